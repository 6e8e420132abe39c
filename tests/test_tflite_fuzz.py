"""Malformed inputs: every one raises FlatbufferError quickly, nothing else."""

import random
import time
import zlib
from pathlib import Path

import pytest

from tfnas.errors import FlatbufferError, UnsupportedModelError
from tfnas.memory import plan_memory
from tfnas.tflite import read_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "tflm" / "models"

FOREIGN = {
    "empty": b"",
    "short": b"TFL3",
    "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "zip": b"PK\x03\x04" + bytes(100),
    "text": b"hello, this is not a model\n" * 20,
    "json": b'{"version": 3, "subgraphs": []}',
    "gzip": zlib.compress(b"x" * 1000),
    "identifier_only": b"\x08\x00\x00\x00TFL3",
    "root_past_end": b"\xff\xff\xff\x7fTFL3" + bytes(64),
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_foreign_files_raise(name):
    with pytest.raises(FlatbufferError) as info:
        read_model(FOREIGN[name])
    assert "\n" not in str(info.value)


def test_missing_file_raises():
    with pytest.raises(FlatbufferError, match="Cannot read model file"):
        read_model("/nonexistent/model.tflite")


def test_wrong_argument_type_raises():
    with pytest.raises(FlatbufferError, match="Received: type=int"):
        read_model(42)


@pytest.mark.parametrize("seed", range(200))
def test_random_bytes_raise(seed):
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(rng.randint(8, 4000)))
    if seed % 2:
        data[4:8] = b"TFL3"  # get past the identifier check
    with pytest.raises(FlatbufferError):
        read_model(bytes(data))


@pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models not found at {MODELS}")
@pytest.mark.parametrize(
    "stem", ["hello_world_int8", "c18_unas_micro_16x16x1", "c24_ops_reshape_reduce_concat6"]
)
def test_truncated_and_flipped_models(stem):
    data = (MODELS / f"{stem}.tflite").read_bytes()
    rng = random.Random(stem)
    start = time.monotonic()
    for _ in range(150):
        cut = data[: rng.randrange(0, len(data) - 16)]
        try:
            read_model(cut)
        except FlatbufferError as exc:
            assert "\n" not in str(exc)
    for _ in range(150):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        try:
            plan_memory(read_model(bytes(flipped)))
        except (FlatbufferError, UnsupportedModelError) as exc:
            assert "\n" not in str(exc)
    assert time.monotonic() - start < 30


def test_shared_vector_bomb_is_rejected():
    # Many tensors sharing one huge shape vector would make decoding quadratic.
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    b = flatbuffers.Builder(0)
    schema.TensorStartShapeVector(b, 20000)
    for _ in range(20000):
        b.PrependInt32(1)
    shape = b.EndVector()
    tensors = []
    for _ in range(2000):
        schema.TensorStart(b)
        schema.TensorAddShape(b, shape)
        tensors.append(schema.TensorEnd(b))
    schema.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    vec = b.EndVector()
    schema.SubGraphStart(b)
    schema.SubGraphAddTensors(b, vec)
    sg = schema.SubGraphEnd(b)
    schema.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(sg)
    sgs = b.EndVector()
    schema.ModelStart(b)
    schema.ModelAddSubgraphs(b, sgs)
    b.Finish(schema.ModelEnd(b), file_identifier=b"TFL3")
    start = time.monotonic()
    with pytest.raises(FlatbufferError, match="too many elements"):
        read_model(bytes(b.Output()))
    assert time.monotonic() - start < 5
