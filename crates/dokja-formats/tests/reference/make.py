"""Writes the reference files in this folder with the reference implementations:
the `onnx` package (helper, numpy_helper, save_model with external data) and CPython's own
pickler driven the way torch.save drives it (persistent ids for storages, reduce to
torch._utils._rebuild_tensor_v2), zipped stored like torch's writer. dokja's tests read them
without Python; rerun with `pip install onnx` (1.23) and `python make.py` in this folder.
"""
import sys, types, pickle, zipfile, collections, io, json
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(0)
W = rng.standard_normal((6, 4)).astype(np.float32)   # HF [out, in]
b = rng.standard_normal(6).astype(np.float32)
E = rng.standard_normal((5, 4)).astype(np.float32)
ref = {"model.layers.0.mlp.up_proj.weight": W.tolist(), "model.layers.0.mlp.up_proj.bias": b.tolist(), "model.embed_tokens.weight": E.tolist()}
json.dump(ref, open("ref.json", "w"))
def model(inits, nodes):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], initializer=inits)
    return helper.make_model(g, producer_name="pytorch")
mm = helper.make_node("MatMul", ["x", "onnx::MatMul_9"], ["/model/layers.0/mlp/up_proj/MatMul_output_0"], name="/model/layers.0/mlp/up_proj/MatMul")
add = helper.make_node("Add", ["/model/layers.0/mlp/up_proj/MatMul_output_0", "model.layers.0.mlp.up_proj.bias"], ["y"])
for dt in [np.float32, np.float16, np.float64]:
    inits = [numpy_helper.from_array(W.T.copy().astype(dt), "onnx::MatMul_9"), numpy_helper.from_array(b.astype(dt), "model.layers.0.mlp.up_proj.bias"), numpy_helper.from_array(E.astype(dt), "model.embed_tokens.weight")]
    m = model(inits, [mm, add])
    onnx.save(m, f"raw_{dt.__name__}.onnx")
# typed fields via helper.make_tensor(vals=...) with raw=False
inits = [helper.make_tensor("onnx::MatMul_9", TensorProto.FLOAT16, W.T.shape, W.T.astype(np.float16).flatten().tolist()),
         helper.make_tensor("model.layers.0.mlp.up_proj.bias", TensorProto.FLOAT, b.shape, b.tolist()),
         helper.make_tensor("model.embed_tokens.weight", TensorProto.DOUBLE, E.shape, E.astype(np.float64).flatten().tolist())]
onnx.save(model(inits, [mm, add]), "typed.onnx")
# external data via onnx's own writer
inits = [numpy_helper.from_array(W.T.copy(), "onnx::MatMul_9"), numpy_helper.from_array(b, "model.layers.0.mlp.up_proj.bias"), numpy_helper.from_array(E, "model.embed_tokens.weight")]
onnx.save_model(model(inits, [mm, add]), "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
# int8 per-channel with DequantizeLinear, axis=1 on [in, out]
Wt = W.T.copy(); s = np.abs(Wt).max(axis=0) / 127; q = np.round(Wt / s).astype(np.int8)
inits = [numpy_helper.from_array(q, "onnx::MatMul_9_quantized"), numpy_helper.from_array(s.astype(np.float32), "onnx::MatMul_9_scale"),
         numpy_helper.from_array(np.zeros(6, np.int8), "onnx::MatMul_9_zero_point"), numpy_helper.from_array(b, "model.layers.0.mlp.up_proj.bias"), numpy_helper.from_array(E, "model.embed_tokens.weight")]
dq = helper.make_node("DequantizeLinear", ["onnx::MatMul_9_quantized", "onnx::MatMul_9_scale", "onnx::MatMul_9_zero_point"], ["onnx::MatMul_9"], name="dq", axis=1)
onnx.save(model(inits, [dq, mm, add]), "q.onnx")
json.dump({"q_deq": (q.astype(np.float32) * s).T.tolist()}, open("qref.json", "w"))
onnx.checker.check_model(onnx.load("q.onnx"))

# torch.save imitation: fake torch modules so CPython's own pickler writes the opcodes.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils; torch._utils = utils
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
class HalfStorage: pass
FloatStorage.__module__ = HalfStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage; torch.HalfStorage = HalfStorage
class Storage:
    def __init__(self, key, arr): self.key, self.arr = key, arr
class Tensor:
    def __init__(self, storage, offset, size, stride): self.s, self.o, self.size, self.stride = storage, offset, size, stride
    def __reduce_ex__(self, proto):
        return (_rebuild_tensor_v2, (self.s, self.o, self.size, self.stride, False, collections.OrderedDict()))
class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            cls = FloatStorage if obj.arr.dtype == np.float32 else HalfStorage
            return ("storage", cls, obj.key, "cpu", obj.arr.size)
        return None
for proto, dt in [(2, np.float32), (4, np.float16)]:
    st = {"0": Storage("0", W.astype(dt)), "1": Storage("1", np.concatenate([b, E.flatten()]).astype(dt))}
    sd = collections.OrderedDict()
    sd["model.layers.0.mlp.up_proj.weight"] = Tensor(st["0"], 0, (6, 4), (4, 1))
    sd["model.layers.0.mlp.up_proj.bias"] = Tensor(st["1"], 0, (6,), (1,))
    sd["model.embed_tokens.weight"] = Tensor(st["1"], 6, (5, 4), (4, 1))   # a view at an offset
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]  # tied: the same object (BINGET)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    buf = io.BytesIO(); P(buf, protocol=proto).dump(sd)
    with zipfile.ZipFile(f"torch{proto}.pt", "w", zipfile.ZIP_STORED) as z:
        z.writestr("torch2/data.pkl", buf.getvalue())
        z.writestr("torch2/byteorder", "little")
        for k, s_ in st.items(): z.writestr(f"torch2/data/{k}", s_.arr.tobytes())
        z.writestr("torch2/version", "3\n")
print("ok")
