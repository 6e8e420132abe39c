"""tfnas.export: C arrays, arena constant, op resolver, board programs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.errors import UnsupportedModelError
from tfnas.export import (
    CUSTOM_RESOLVER_METHODS,
    RESOLVER_METHODS,
    arena_size,
    io_tensors,
    render_board,
    resolver_methods,
    resolver_snippet,
    to_c_source,
    write_c_files,
)
from tfnas.inspection import inspect
from tfnas.tflite import read_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "tflm" / "models"
C16 = MODELS / "c16_unas_tiny_32x32x1.tflite"  # int8, 5 distinct ops
C24 = MODELS / "c24_ops_reshape_reduce_concat6.tflite"  # PAD, REDUCE_MAX, MEAN, ...
C29 = MODELS / "c29_unas_res_32x32x3_int16x8_floatio_of_c21.tflite"  # float32 I/O
HELLO = MODELS / "hello_world_int8.tflite"
TARGETS = ("host", "cortex-m", "cortex-m-cmsis")
GXX = shutil.which("g++")

needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models not in {MODELS}")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed")


def _array_bytes(cc: str, name: str = "g_model") -> bytes:
    body = re.search(
        rf"alignas\(16\) const unsigned char {name}\[\] = \{{\n(.*?)\n\}};", cc, re.S
    ).group(1)
    lines = body.splitlines()
    assert all(len(line.split()) == 12 for line in lines[:-1])
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2}),", body))


def _header_int(h: str, constant: str) -> int:
    return int(re.search(rf"constexpr int {constant} = (\d+);", h).group(1))


def _with_opcode(path: Path, builtin: str, custom: str | None = None) -> bytes:
    """The model at ``path`` with its first operator code replaced."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    code = model.operatorCodes[0]
    code.builtinCode = getattr(schema.BuiltinOperator, builtin)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.customCode = custom
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# --- the C array -------------------------------------------------------------------------


@needs_models
@pytest.mark.parametrize("model", ["c16_unas_tiny_32x32x1", "hello_world_int8", "person_detect"])
def test_array_round_trips_to_the_same_bytes(model):
    data = (MODELS / f"{model}.tflite").read_bytes()
    cc, h = to_c_source(data)
    assert _array_bytes(cc) == data
    assert f"const unsigned int g_model_len = {len(data)};" in cc
    assert '#include "model_data.h"' in cc
    assert "extern const unsigned char g_model[];" in h
    assert "extern const unsigned int g_model_len;" in h


@needs_models
def test_custom_array_name_and_include_guard():
    cc, h = to_c_source(HELLO, name="person_model")
    assert _array_bytes(cc, "person_model") == HELLO.read_bytes()
    assert "const unsigned int person_model_len = 2704;" in cc
    assert h.count("#ifndef TFNAS_PERSON_MODEL_MODEL_DATA_H_") == 1
    assert "#define TFNAS_PERSON_MODEL_MODEL_DATA_H_" in h
    assert h.rstrip().endswith("#endif  // TFNAS_PERSON_MODEL_MODEL_DATA_H_")


# --- the arena constant ------------------------------------------------------------------


@needs_models
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", ["c16_unas_tiny_32x32x1", "hello_world_int8", C24.stem])
def test_arena_size_is_the_smallest_working_arena(model, target):
    path = MODELS / f"{model}.tflite"
    report = inspect(path, target=target)
    _, h = to_c_source(path, target=target)
    assert _header_int(h, "kTensorArenaSize") == report["min_arena_bytes"]
    assert report["min_arena_bytes"] % 16 == 0


@needs_models
@pytest.mark.parametrize(("headroom", "added"), [(0, 0), (1, 16), (16, 16), (17, 32), (1000, 1008)])
def test_arena_headroom_is_rounded_up_to_16(headroom, added):
    _, h = to_c_source(C16, target="cortex-m", arena_headroom_bytes=headroom)
    assert _header_int(h, "kTensorArenaSize") == 3920 + added
    assert arena_size(3920, headroom) == 3920 + added
    assert f"headroom ({headroom:,} bytes requested, rounded up to 16)" in h


@needs_models
def test_arena_comment_says_how_it_was_computed():
    _, h = to_c_source(C16, target="cortex-m")
    # c16 on cortex-m: head 2048, tail 1860, arena_used 3908, smallest working arena 3920.
    assert "TFLM commit 90b983c2" in h
    assert 'target "cortex-m": 32-bit bare-metal ARM EABI (Cortex-M), reference kernels' in h
    assert re.search(r"planned head .* 2,048 bytes", h)
    assert re.search(r"persistent tail .* 1,860 bytes", h)
    assert re.search(r"arena_used_bytes\(\) .* 3,908 bytes", h)
    assert re.search(r"smallest working arena \(multiple of 16\) .* 3,920 bytes", h)
    assert re.search(r"= kTensorArenaSize .* 3,920 bytes", h)
    _, h = to_c_source(C16, target="cortex-m-cmsis")
    assert "CMSIS-NN kernels" in h


# --- inputs and outputs ------------------------------------------------------------------


@needs_models
def test_io_constants_give_shape_dtype_and_quantisation():
    sg = read_model(C16).main
    q_in = sg.tensors[sg.inputs[0]].quantization
    q_out = sg.tensors[sg.outputs[0]].quantization
    _, h = to_c_source(C16)
    assert "using Input0Type = int8_t;" in h
    assert "constexpr int kInput0Shape[] = {1, 32, 32, 1};" in h
    assert "constexpr int kInput0Elements = 1024;" in h
    assert f"constexpr int kInput0ZeroPoint = {q_in.zero_point[0]};" in h
    scale = float(re.search(r"constexpr float kInput0Scale = (.*)f;", h).group(1))
    assert scale == pytest.approx(q_in.scale[0], rel=1e-7)
    assert "using Output0Type = int8_t;" in h
    assert "constexpr int kOutput0Shape[] = {1, 4};" in h
    assert f"constexpr int kOutput0ZeroPoint = {q_out.zero_point[0]};" in h
    assert "constexpr int kInputCount = 1;" in h and "constexpr int kOutputCount = 1;" in h


@needs_models
def test_float_io_is_marked_not_quantised():
    inputs = [t for t in io_tensors(C29) if t.kind == "input"]
    assert [(t.dtype, t.quantized, t.scale, t.zero_point) for t in inputs] == [
        ("FLOAT32", False, 0.0, 0)
    ]
    _, h = to_c_source(C29)
    assert "using Input0Type = float;" in h
    assert "constexpr float kInput0Scale = 0.0f;" in h
    assert "not quantised" in h


# --- the op resolver ---------------------------------------------------------------------


@needs_models
@pytest.mark.parametrize("path", sorted(MODELS.glob("*.tflite")) if MODELS.is_dir() else [])
def test_resolver_lists_exactly_the_distinct_opcodes(path):
    opcodes = [op["opcode"] for op in inspect(path, target="host")["ops"]]
    distinct = list(dict.fromkeys(opcodes))
    methods = resolver_methods(path)
    assert methods == [RESOLVER_METHODS[op] for op in distinct]
    _, h = to_c_source(path, target="host")
    assert _header_int(h, "kModelOpCount") == len(distinct)
    assert re.findall(r"resolver\.(Add\w+)\(\)\) != 0", h) == methods


@needs_models
def test_resolver_snippet_and_tflm_method_names():
    assert resolver_snippet(C24).splitlines() == [
        "static tflite::MicroMutableOpResolver<11> resolver;",
        "resolver.AddConv2D();",
        "resolver.AddPad();",
        "resolver.AddMaxPool2D();",
        "resolver.AddReshape();",
        "resolver.AddMean();",
        "resolver.AddFullyConnected();",
        "resolver.AddAveragePool2D();",
        "resolver.AddReduceMax();",
        "resolver.AddAdd();",
        "resolver.AddConcatenation();",
        "resolver.AddSoftmax();",
    ]
    expected = {
        "CONV_2D": "AddConv2D",
        "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
        "FULLY_CONNECTED": "AddFullyConnected",
        "SOFTMAX": "AddSoftmax",
        "MEAN": "AddMean",
        "MAX_POOL_2D": "AddMaxPool2D",
        "AVERAGE_POOL_2D": "AddAveragePool2D",
        "CONCATENATION": "AddConcatenation",
        "ADD": "AddAdd",
        "RESHAPE": "AddReshape",
        "QUANTIZE": "AddQuantize",
        "DEQUANTIZE": "AddDequantize",
        "PAD": "AddPad",
        "MIRROR_PAD": "AddMirrorPad",
        "REDUCE_MAX": "AddReduceMax",
        "SVDF": "AddSvdf",
        "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    }
    assert {op: RESOLVER_METHODS[op] for op in expected} == expected


def test_resolver_table_uses_schema_names():
    from ai_edge_litert import schema_py_generated as schema

    builtin = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    assert set(RESOLVER_METHODS) <= builtin
    assert len(set(RESOLVER_METHODS.values())) == len(RESOLVER_METHODS)
    methods = [*RESOLVER_METHODS.values(), *CUSTOM_RESOLVER_METHODS.values()]
    assert all(re.fullmatch(r"Add[A-Z][A-Za-z0-9]*", m) for m in methods)


@needs_models
def test_unknown_builtin_op_raises():
    data = _with_opcode(HELLO, "REDUCE_PROD")
    with pytest.raises(
        UnsupportedModelError, match=r"no registration method .* opcode='REDUCE_PROD'"
    ):
        to_c_source(data)
    with pytest.raises(
        UnsupportedModelError, match=r"Operator REDUCE_PROD \(subgraph 0, operator 0\)"
    ):
        resolver_methods(data)


@needs_models
def test_unknown_custom_op_raises_and_known_custom_op_registers():
    with pytest.raises(UnsupportedModelError, match=r"Received: opcode='CUSTOM:MyOp'"):
        resolver_methods(_with_opcode(HELLO, "CUSTOM", "MyOp"))
    data = _with_opcode(HELLO, "CUSTOM", "TFLite_Detection_PostProcess")
    assert resolver_methods(data) == ["AddDetectionPostprocess"]


# --- argument errors ---------------------------------------------------------------------


@needs_models
@pytest.mark.parametrize("headroom", [-1, -16, 1.5, "16", True, None])
def test_bad_headroom_raises(headroom):
    match = re.escape(f"Received: arena_headroom_bytes={headroom!r}")
    with pytest.raises(ValueError, match=r"non-negative integer number of bytes. " + match):
        to_c_source(C16, arena_headroom_bytes=headroom)
    with pytest.raises(ValueError, match=match):
        arena_size(3920, headroom)


@needs_models
@pytest.mark.parametrize("name", ["1model", "g-model", "int", "", "g model"])
def test_bad_array_name_raises(name):
    match = r"C\+\+ identifier that is not a keyword .* " + re.escape(f"Received: name={name!r}")
    with pytest.raises(ValueError, match=match):
        to_c_source(C16, name=name)


@needs_models
def test_bad_target_raises():
    with pytest.raises(ValueError, match=r"Unknown target: expected one of .* Received: 'avr'"):
        to_c_source(C16, target="avr")


def test_bad_source_suffix_raises(tmp_path):
    with pytest.raises(ValueError, match=r"Received: source_suffix='.c'"):
        write_c_files(b"", tmp_path, source_suffix=".c")


# --- files and boards --------------------------------------------------------------------


@needs_models
def test_write_c_files(tmp_path):
    cc_path, h_path = write_c_files(C16, tmp_path / "out", arena_headroom_bytes=16)
    assert (cc_path.name, h_path.name) == ("model_data.cc", "model_data.h")
    cc, h = to_c_source(C16, arena_headroom_bytes=16)
    assert cc_path.read_text() == cc and h_path.read_text() == h


@needs_models
def test_render_arduino(tmp_path):
    files = render_board("arduino", C16, tmp_path / "tfnas_demo", target="cortex-m-cmsis")
    assert [f.name for f in files] == ["tfnas_demo.ino", "model_data.cpp", "model_data.h"]
    ino = files[0].read_text()
    assert "{{" not in ino
    assert '#include "model_data.h"' in ino
    assert "alignas(16) uint8_t tensor_arena[kTensorArenaSize];" in ino
    assert "static tflite::MicroMutableOpResolver<5> resolver;" in ino
    assert "  resolver.AddConv2D();\n  resolver.AddAdd();" in ino
    assert "MicroInterpreter static_interpreter(model, resolver, tensor_arena," in ino
    assert "arena_used_bytes()" in ino and "QuantizeInput0(" in ino
    assert _header_int(files[2].read_text(), "kTensorArenaSize") == 4128


@needs_models
def test_render_stm32(tmp_path):
    files = render_board("stm32", C24, tmp_path / "my-app", arena_headroom_bytes=100)
    assert [f.name for f in files] == [
        "main.cc", "CMakeLists.txt", "arm-none-eabi.cmake", "model_data.cc", "model_data.h"
    ]  # fmt: skip
    main, cmake = files[0].read_text(), files[1].read_text()
    assert "{{" not in main and "tflite::GetModel(g_model)" in main
    assert resolver_snippet(C24, indent="  ") in main
    assert "{{" not in cmake and "project(my_app C CXX ASM)" in cmake
    assert '"-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"' in cmake
    assert "TARGET_ARCH=cortex-m4+fp" in cmake
    assert _header_int(files[4].read_text(), "kTensorArenaSize") == 8240 + 112
    # A catalogue part sets its own core and FPU (the STM32F746's FPU is single precision).
    cmake = render_board("stm32", C24, tmp_path / "f7", device="stm32f746zg")[1].read_text()
    assert '"-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16"' in cmake
    with pytest.raises(ValueError, match=r"No Arm compiler flags for esp32-s3: .* 'Xtensa LX7'"):
        render_board("stm32", C24, tmp_path / "x", device="esp32-s3")


@needs_models
def test_render_generic(tmp_path):
    files = render_board("generic", C24, tmp_path / "app", target="host")
    assert [f.name for f in files] == ["main.cc", "Makefile", "model_data.cc", "model_data.h"]
    makefile = files[1].read_text()
    assert "{{" not in makefile and "\napp: $(OBJECTS)\n" in makefile
    assert 'kTensorArenaSize in\n# model_data.h was sized for TFLM target "host"' in makefile


@needs_models
def test_render_board_errors(tmp_path):
    match = r"Unknown board: expected one of \['arduino', 'generic', 'stm32'\]. Received: 'esp32'"
    with pytest.raises(ValueError, match=match):
        render_board("esp32", C16, tmp_path)
    with pytest.raises(ValueError, match=r"Arduino sketch folder name .* Received: out_dir="):
        render_board("arduino", C16, tmp_path / "bad name!")
    with pytest.raises(FileNotFoundError, match=r"Board template for 'stm32' not found"):
        render_board("stm32", C16, tmp_path / "x", template_dir=tmp_path / "nowhere")
    (tmp_path / "tpl" / "generic").mkdir(parents=True)
    (tmp_path / "tpl" / "main.cc.in").write_text("{{MODEL}} {{BOARD_LED}}\n")
    (tmp_path / "tpl" / "generic" / "Makefile.in").write_text("{{PROJECT}}:\n")
    with pytest.raises(
        ValueError, match=r"placeholders with no value: .* Received: \['BOARD_LED'\]"
    ):
        render_board("generic", C16, tmp_path / "y", template_dir=tmp_path / "tpl")
    assert not (tmp_path / "y").exists()  # nothing written when a template is bad


# --- compile checks ----------------------------------------------------------------------

_CHECK_CC = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "model_data.h"

static_assert(kTensorArenaSize % 16 == 0, "arena is a multiple of 16");
static_assert(kTensorArenaSize == EXPECTED_ARENA, "arena constant");
static_assert(kInput0Elements == EXPECTED_INPUT_ELEMENTS, "input elements");
static_assert(sizeof(Input0Type) == 1, "int8 input");

struct MockResolver {
  int count = 0;
  char names[64][40];
  int add(const char* name) { std::strcpy(names[count++], name); return 0; }
METHODS
};

int main() {
  alignas(16) static uint8_t tensor_arena[kTensorArenaSize];
  if (reinterpret_cast<uintptr_t>(g_model) % 16 != 0) return 1;
  if (reinterpret_cast<uintptr_t>(tensor_arena) % 16 != 0) return 2;
  if (g_model_len != EXPECTED_LEN) return 3;
  if (std::memcmp(g_model + 4, "TFL3", 4) != 0) return 4;
  if (QuantizeInput0(1e9f) != 127 || QuantizeInput0(-1e9f) != -128) return 5;
  if (QuantizeInput0(0.0f) != kInput0ZeroPoint) return 6;
  if (DequantizeOutput0(static_cast<Output0Type>(kOutput0ZeroPoint)) != 0.0f) return 7;
  MockResolver resolver;
  if (!RegisterModelOps(resolver) || resolver.count != kModelOpCount) return 8;
  for (int i = 0; i < resolver.count; ++i) std::printf("%s\n", resolver.names[i]);
  return 0;
}
"""


def _mock_methods() -> str:
    names = [*RESOLVER_METHODS.values(), *CUSTOM_RESOLVER_METHODS.values()]
    return "\n".join(f'  int {m}() {{ return add("{m}"); }}' for m in names)


def _gxx(*args, cwd: Path) -> None:
    cmd = [GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@needs_models
@needs_gxx
def test_generated_c_compiles_links_and_runs(tmp_path):
    write_c_files(C16, tmp_path, target="cortex-m")
    data = C16.read_bytes()
    check = (
        _CHECK_CC.replace("EXPECTED_ARENA", "3920")
        .replace("EXPECTED_INPUT_ELEMENTS", "1024")
        .replace("EXPECTED_LEN", f"{len(data)}u")
        .replace("METHODS", _mock_methods())
    )
    (tmp_path / "check.cc").write_text(check)
    _gxx("-c", "model_data.cc", "-o", "model_data.o", cwd=tmp_path)
    _gxx("-c", "check.cc", "-o", "check.o", cwd=tmp_path)
    _gxx("model_data.o", "check.o", "-o", "check", cwd=tmp_path)
    run = subprocess.run([tmp_path / "check"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split() == resolver_methods(C16)


@needs_models
@needs_gxx
def test_float_io_header_compiles(tmp_path):
    write_c_files(C29, tmp_path)
    (tmp_path / "use.cc").write_text(
        '#include "model_data.h"\n#include "model_data.h"\n'
        'static_assert(sizeof(Input0Type) == 4, "float input");\n'
        "float f() { return QuantizeInput0(0.5f) + DequantizeOutput0(Output0Type{}); }\n"
    )
    _gxx("-c", "use.cc", "-o", "use.o", cwd=tmp_path)
    _gxx("-c", "model_data.cc", "-o", "model_data.o", cwd=tmp_path)


# Just enough of TFLM's API, with the real signatures, to compile the board programs.
_TFLM_STUB = r"""
#pragma once
#include <cstddef>
#include <cstdint>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef union { int8_t* int8; float* f; void* data; } TfLitePtrUnion;
typedef struct { TfLitePtrUnion data; } TfLiteTensor;
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
struct Model { uint32_t version() const { return 3; } };
inline const Model* GetModel(const void*) { static Model m; return &m; }
class MicroOpResolver { public: virtual ~MicroOpResolver() {} };
template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
METHODS
};
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver,
                   uint8_t* tensor_arena, size_t tensor_arena_size);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t arena_used_bytes() const;
};
void InitializeTarget();
}  // namespace tflite
void MicroPrintf(const char* format, ...);
"""


def _tflm_stub(root: Path) -> Path:
    micro = root / "tensorflow" / "lite" / "micro"
    micro.mkdir(parents=True)
    methods = "\n".join(
        f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}"
        for m in [*RESOLVER_METHODS.values(), *CUSTOM_RESOLVER_METHODS.values()]
    )
    (micro / "micro_interpreter.h").write_text(_TFLM_STUB.replace("METHODS", methods))
    for header in ("micro_log.h", "micro_mutable_op_resolver.h", "system_setup.h"):
        (micro / header).write_text(
            '#pragma once\n#include "tensorflow/lite/micro/micro_interpreter.h"\n'
        )
    (root / "tensorflow" / "lite" / "schema").mkdir()
    (root / "tensorflow" / "lite" / "schema" / "schema_generated.h").write_text("#pragma once\n")
    (root / "TensorFlowLite.h").write_text("#pragma once\n")
    (root / "Arduino.h").write_text("#pragma once\nvoid delay(unsigned long ms);\n")
    return root


@needs_models
@needs_gxx
@pytest.mark.parametrize("board", ["arduino", "stm32", "generic"])
def test_board_program_compiles_against_tflm_api(tmp_path, board):
    stub = _tflm_stub(tmp_path / "stub")
    files = render_board(board, C16, tmp_path / "tfnas_app")
    program = files[0]
    flags = ["-I", str(stub), "-I", str(program.parent)]
    if board == "arduino":
        flags += ["-include", "Arduino.h", "-x", "c++"]
    _gxx(*flags, "-c", str(program), "-o", str(tmp_path / "program.o"), cwd=tmp_path)


# --- no TensorFlow -----------------------------------------------------------------------


@needs_models
def test_export_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from tfnas.export import render_board, to_c_source\n"
        f"to_c_source({str(C16)!r})\n"
        f"render_board('stm32', {str(C16)!r}, {str(tmp_path)!r})\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert 'tf_keras' not in sys.modules, 'tf_keras was imported'\n"
    )
    cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@needs_models
def test_export_cli_any_model_with_and_without_a_board(tmp_path, capsys):
    from tfnas.cli import main

    truth = json.loads(
        (SHARED / "tflm" / "truth" / "eabi32_cmsis" / f"{C16.stem}.json").read_text()
    )
    assert main(["export", str(C16), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out.splitlines()
    header = (tmp_path / "c" / "model_data.h").read_text()
    size = int(re.search(r"constexpr int kTensorArenaSize = (\d+);", header).group(1))
    assert f"kTensorArenaSize {size:,} B on cortex-m" in out[0]
    assert out[1] == f"wrote {tmp_path / 'c'}/model_data.cc, model_data.h"
    # A catalogue board picks its template and its TFLM build (CMSIS-NN for the Nano 33 BLE).
    sketch = tmp_path / "nano"
    assert (
        main(["export", str(C16), "--out", str(sketch), "--board", "arduino-nano-33-ble-sense"])
        == 0
    )
    assert "on cortex-m-cmsis" in capsys.readouterr().out
    assert sorted(p.name for p in sketch.iterdir()) == [
        "model_data.cpp",
        "model_data.h",
        "nano.ino",
    ]
    header = (sketch / "model_data.h").read_text()
    size = int(re.search(r"constexpr int kTensorArenaSize = (\d+);", header).group(1))
    assert (
        size == truth["min_arena_bytes_multiple_of_16"]
    )  # the real CMSIS-NN build's smallest arena
    assert "tflite::MicroMutableOpResolver<" in (sketch / "nano.ino").read_text()
    assert (
        main(
            [
                "export",
                str(C16),
                "--out",
                str(tmp_path / "s"),
                "--board",
                "stm32",
                "--headroom",
                "100",
            ]
        )
        == 0
    )
    assert (tmp_path / "s" / "main.cc").exists() and (tmp_path / "s" / "CMakeLists.txt").exists()
    capsys.readouterr()
    # A board with no Arduino or STM32 project gets the generic one, sized for its target.
    assert main(["export", str(C16), "--out", str(tmp_path / "esp"), "--board", "esp32-s3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "on cortex-m" in out[0] and "cmsis" not in out[0]
    assert out[1] == f"wrote {tmp_path / 'esp'}/main.cc, Makefile, model_data.cc, model_data.h"


@needs_models
@pytest.mark.parametrize("argv,expected", [
    (["--board", "ardiuno"], "(did you mean 'arduino'?)"),
    (["--board", "stm"], "(did you mean 'stm32'?)"),
    (["--headroom", "-16"], "headroom must be an integer >= 0. Received: headroom=-16"),
    (["--target", "m4"], "argument --target: invalid choice: 'm4'"),
])  # fmt: skip
def test_export_cli_bad_arguments(tmp_path, capsys, argv, expected):
    from tfnas.cli import main

    assert main(["export", str(C16), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "o").exists()


def test_export_cli_bad_model(tmp_path, capsys):
    from tfnas.cli import main

    (tmp_path / "m.tflite").write_bytes(b"not a model at all")
    assert main(["export", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "o")]) == 2
    assert main(["export", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Not a TFLite flatbuffer" in err[0] and "does not exist" in err[1]
    assert not (tmp_path / "o").exists()
