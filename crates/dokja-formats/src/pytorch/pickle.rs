//! A restricted pickle interpreter for `torch.save` state dicts.
//!
//! It understands the opcodes Python's pickler emits for a dict of tensors (protocols 2 to
//! 5) and nothing else. Nothing is ever called: `GLOBAL` resolves only names on an
//! allow-list (tensor rebuild functions, storage classes, `OrderedDict`) to inert markers,
//! and `REDUCE` interprets those markers itself. Any other global (`os.system`,
//! `builtins.eval`, ...) stops the load with an error naming it.
//!
//! Bounds: stack size, mark depth, memo size, nesting depth and string lengths are capped,
//! and copies made when a shared container is modified count against a work budget
//! proportional to the pickle's length, so no input makes it allocate or loop beyond a
//! small multiple of its own size.

use std::rc::Rc;

use crate::dtype::Dtype;

const MAX_STACK: usize = 1 << 20;
const MAX_MARKS: usize = 256;
const MAX_MEMO: usize = 1 << 22;
/// Containers nested deeper than this are refused (state dicts nest 4 or 5 deep).
const MAX_NESTING: u16 = 64;

/// A global the interpreter knows; anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Global {
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    OrderedDict,
    /// `torch.FloatStorage` and friends: the element type of a storage.
    Storage(Dtype),
    /// `torch.float16` and friends.
    TorchDtype(Dtype),
    /// `torch.Tensor`, `torch.nn.parameter.Parameter`: only passed around.
    TensorType,
}

fn storage_dtype(name: &str) -> Option<Dtype> {
    Some(match name {
        "DoubleStorage" => Dtype::F64,
        "FloatStorage" => Dtype::F32,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" => Dtype::U8,
        "BoolStorage" => Dtype::Bool,
        "Float8_e4m3fnStorage" => Dtype::F8E4M3,
        "Float8_e5m2Storage" => Dtype::F8E5M2,
        _ => return None,
    })
}

fn torch_dtype(name: &str) -> Option<Dtype> {
    Some(match name {
        "float64" | "double" => Dtype::F64,
        "float32" | "float" => Dtype::F32,
        "float16" | "half" => Dtype::F16,
        "bfloat16" => Dtype::BF16,
        "int64" | "long" => Dtype::I64,
        "int32" | "int" => Dtype::I32,
        "int16" | "short" => Dtype::I16,
        "int8" => Dtype::I8,
        "uint8" => Dtype::U8,
        "bool" => Dtype::Bool,
        "float8_e4m3fn" => Dtype::F8E4M3,
        "float8_e5m2" => Dtype::F8E5M2,
        _ => return None,
    })
}

fn resolve_global(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromTypeV2,
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter") => Global::TensorType,
        ("torch", n) => match storage_dtype(n) {
            Some(d) => Global::Storage(d),
            None => Global::TorchDtype(torch_dtype(n)?),
        },
        _ => return None,
    })
}

#[derive(Debug)]
pub(crate) struct StorageRef {
    pub dtype: Dtype,
    pub key: String,
    /// Elements, as the persistent id declares them.
    pub numel: u64,
}

#[derive(Debug)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    /// In elements.
    pub storage_offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Clone, Debug)]
// Scalars keep their values though only their kinds are read so far.
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    /// Items and nesting depth.
    Tuple(Rc<Vec<Value>>, u16),
    List(Rc<Vec<Value>>, u16),
    Dict(Rc<Vec<(Value, Value)>>, u16),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn depth(&self) -> u16 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(..) => "tuple",
            Value::List(..) => "list",
            Value::Dict(..) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

/// Why a pickle was refused; the caller adds the file.
#[derive(Debug, PartialEq)]
pub(crate) enum PickleError {
    /// A global outside the allow-list: `module.name`.
    ForbiddenGlobal(String),
    Malformed(String),
}

type PResult<T> = Result<T, PickleError>;

fn bad<T>(fault: impl Into<String>) -> PResult<T> {
    Err(PickleError::Malformed(fault.into()))
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Value>,
    /// Elements left to copy when modifying containers the memo also holds.
    budget: u64,
}

/// Runs the pickle and returns the object it builds.
pub(crate) fn load(data: &[u8]) -> PResult<Value> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
        budget: 8 * data.len() as u64 + (1 << 20),
    };
    m.run()
}

fn tuple(items: Vec<Value>) -> PResult<Value> {
    let depth = items.iter().map(Value::depth).max().unwrap_or(0) + 1;
    if depth > MAX_NESTING {
        return bad(format!("containers nested more than {MAX_NESTING} deep"));
    }
    Ok(Value::Tuple(Rc::new(items), depth))
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> PResult<&[u8]> {
        if self.data.len() - self.pos < n {
            return bad(format!(
                "opcode argument of {n} bytes at byte {} runs past the end (truncated?)",
                self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn line(&mut self) -> PResult<String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| {
                PickleError::Malformed(format!(
                    "GLOBAL argument at byte {} has no newline within 256 bytes",
                    self.pos
                ))
            })?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }
    fn string(&mut self, n: u64) -> PResult<Value> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes)
            .map_err(|_| PickleError::Malformed("a string that is not UTF-8".into()))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn push(&mut self, v: Value) -> PResult<()> {
        if self.stack.len() >= MAX_STACK {
            return bad(format!("stack deeper than {MAX_STACK}"));
        }
        self.stack.push(v);
        Ok(())
    }
    fn pop(&mut self) -> PResult<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return bad(format!("stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.pop().expect("checked"))
    }
    fn top(&mut self) -> PResult<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return bad(format!("stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.last_mut().expect("checked"))
    }
    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return bad(format!("no MARK before byte {}", self.pos));
        };
        Ok(self.stack.split_off(mark))
    }
    fn memo_put(&mut self, key: u32) -> PResult<()> {
        let v = self.top()?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return bad(format!("memo larger than {MAX_MEMO} entries"));
        }
        self.memo.insert(key, v);
        Ok(())
    }
    fn memo_get(&mut self, key: u32) -> PResult<()> {
        let v =
            self.memo.get(&key).cloned().ok_or_else(|| {
                PickleError::Malformed(format!("memo key {key} was never stored"))
            })?;
        self.push(v)
    }
    /// Charges the copy a shared container costs when modified in place.
    fn charge(&mut self, shared: bool, len: usize) -> PResult<()> {
        if shared {
            self.budget = self.budget.checked_sub(len as u64).ok_or_else(|| {
                PickleError::Malformed("too much copying of shared containers".into())
            })?;
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> PResult<()> {
        let item_depth = items.iter().map(Value::depth).max().unwrap_or(0);
        let target = self.top()?;
        let Value::List(list, depth) = target else {
            return bad(format!("APPEND to a {}", target.kind()));
        };
        let (shared, len) = (Rc::strong_count(list) > 1, list.len());
        let new_depth = (*depth).max(item_depth + 1);
        if new_depth > MAX_NESTING {
            return bad(format!("containers nested more than {MAX_NESTING} deep"));
        }
        self.charge(shared, len)?;
        let Value::List(list, depth) = self.top()? else {
            unreachable!("checked above")
        };
        *depth = new_depth;
        Rc::make_mut(list).extend(items);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> PResult<()> {
        if !items.len().is_multiple_of(2) {
            return bad("SETITEMS with an odd number of items");
        }
        let item_depth = items.iter().map(Value::depth).max().unwrap_or(0);
        let target = self.top()?;
        let Value::Dict(dict, depth) = target else {
            return bad(format!("SETITEM on a {}", target.kind()));
        };
        let (shared, len) = (Rc::strong_count(dict) > 1, dict.len());
        let new_depth = (*depth).max(item_depth + 1);
        if new_depth > MAX_NESTING {
            return bad(format!("containers nested more than {MAX_NESTING} deep"));
        }
        self.charge(shared, len)?;
        let Value::Dict(dict, depth) = self.top()? else {
            unreachable!("checked above")
        };
        *depth = new_depth;
        let dict = Rc::make_mut(dict);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.push((k, v));
        }
        Ok(())
    }

    fn run(&mut self) -> PResult<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return bad(format!("pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.u64()?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => {
                    if self.marks.len() >= MAX_MARKS {
                        return bad(format!("MARKs nested more than {MAX_MARKS} deep"));
                    }
                    self.marks.push(self.stack.len());
                }
                b'}' => self.push(Value::Dict(Rc::new(Vec::new()), 1))?,
                b']' => self.push(Value::List(Rc::new(Vec::new()), 1))?,
                b')' => self.push(Value::Tuple(Rc::new(Vec::new()), 1))?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push(Value::Int(v as i64))?
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return bad(format!("LONG1 of {n} bytes does not fit in 64 bits"));
                    }
                    let b = self.take(n)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8"));
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = self.u32()?;
                    let v = self.string(n as u64)?;
                    self.push(v)?
                }
                0x8c => {
                    let n = self.u8()?;
                    let v = self.string(n as u64)?;
                    self.push(v)?
                }
                0x8d => {
                    let n = self.u64()?;
                    let v = self.string(n)?;
                    self.push(v)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = tuple(items)?;
                    self.push(v)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = tuple(items)?;
                    self.push(v)?
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend_list(vec![item])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(k as u32)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(k as u32)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = resolve_global(&module, &name)
                        .ok_or(PickleError::ForbiddenGlobal(format!("{module}.{name}")))?;
                    self.push(Value::Global(g))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return bad("STACK_GLOBAL of non-strings");
                    };
                    let g = resolve_global(&module, &name)
                        .ok_or(PickleError::ForbiddenGlobal(format!("{module}.{name}")))?;
                    self.push(Value::Global(g))?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_load(pid)?;
                    self.push(v)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.push(v)?
                }
                b'b' => {
                    // The state of an OrderedDict (`_metadata`) or a tensor subclass: not
                    // needed to read the weights.
                    let _state = self.pop()?;
                    let target = self.top()?;
                    if !matches!(target, Value::Dict(..) | Value::Tensor(_)) {
                        return bad(format!("BUILD on a {}", target.kind()));
                    }
                }
                b'0' => {
                    self.pop()?;
                }
                _ => {
                    return bad(format!(
                        "opcode 0x{op:02x} at byte {at} is not one torch.save emits for a state dict"
                    ));
                }
            }
        }
    }
}

/// torch.save's persistent id: `('storage', StorageClass, key, location, numel)`.
fn persistent_load(pid: Value) -> PResult<Value> {
    let Value::Tuple(items, _) = &pid else {
        return bad(format!("persistent id is a {}, not a tuple", pid.kind()));
    };
    match &items[..] {
        [
            Value::Str(tag),
            Value::Global(g),
            Value::Str(key),
            Value::Str(_location),
            Value::Int(numel),
        ] if &**tag == "storage" => {
            let dtype = match g {
                Global::Storage(d) | Global::TorchDtype(d) => *d,
                other => return bad(format!("storage of type {other:?}")),
            };
            let numel = u64::try_from(*numel)
                .map_err(|_| PickleError::Malformed(format!("storage of {numel} elements")))?;
            Ok(Value::Storage(Rc::new(StorageRef {
                dtype,
                key: key.to_string(),
                numel,
            })))
        }
        _ => bad("persistent id is not ('storage', type, key, location, numel)"),
    }
}

fn int_tuple(v: &Value, what: &str) -> PResult<Vec<u64>> {
    let (Value::Tuple(items, _) | Value::List(items, _)) = v else {
        return bad(format!("tensor {what} is a {}, not a tuple", v.kind()));
    };
    if items.len() as u64 > crate::model::limits::MAX_DIMS {
        return bad(format!("tensor {what} has {} dimensions", items.len()));
    }
    items
        .iter()
        .map(|x| match x {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            // Never Debug-format a value here: memo references can make a small pickle
            // describe an exponentially large tree.
            Value::Int(i) => bad(format!("tensor {what} holds {i}")),
            _ => bad(format!("tensor {what} holds a {}", x.kind())),
        })
        .collect()
}

/// What `REDUCE` of an allowed global builds; no Python is involved.
fn reduce(callable: Value, args: Value) -> PResult<Value> {
    let Value::Global(g) = callable else {
        return bad(format!("REDUCE calls a {}", callable.kind()));
    };
    let Value::Tuple(args, _) = args else {
        return bad(format!("REDUCE arguments are a {}", args.kind()));
    };
    match (g, &args[..]) {
        (Global::OrderedDict, []) => Ok(Value::Dict(Rc::new(Vec::new()), 1)),
        (Global::OrderedDict, [Value::List(pairs, d) | Value::Tuple(pairs, d)]) => {
            let mut dict = Vec::with_capacity(pairs.len());
            for p in pairs.iter() {
                match p {
                    Value::Tuple(kv, _) if kv.len() == 2 => {
                        dict.push((kv[0].clone(), kv[1].clone()))
                    }
                    _ => return bad("OrderedDict of something other than pairs"),
                }
            }
            Ok(Value::Dict(Rc::new(dict), *d))
        }
        (Global::RebuildTensorV2, [storage, offset, size, stride, _requires_grad, _hooks, ..]) => {
            let Value::Storage(storage) = storage else {
                return bad(format!("tensor storage is a {}", storage.kind()));
            };
            let Value::Int(offset) = offset else {
                return bad("tensor storage offset is not an int");
            };
            let storage_offset = u64::try_from(*offset)
                .map_err(|_| PickleError::Malformed(format!("storage offset {offset}")))?;
            let size = int_tuple(size, "size")?;
            let stride = int_tuple(stride, "stride")?;
            if size.len() != stride.len() {
                return bad(format!(
                    "tensor size {size:?} and stride {stride:?} differ in length"
                ));
            }
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage: storage.clone(),
                storage_offset,
                size,
                stride,
            })))
        }
        (
            Global::RebuildParameter | Global::RebuildParameterWithState,
            [t @ Value::Tensor(_), ..],
        ) => Ok(t.clone()),
        (Global::RebuildFromTypeV2, [Value::Global(func), _type, inner, _state])
            if *func != Global::RebuildFromTypeV2 =>
        {
            reduce(Value::Global(*func), inner.clone())
        }
        (g, args) => bad(format!(
            "REDUCE of {g:?} with {} arguments is not a tensor or dict constructor",
            args.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(data: &[u8]) -> Vec<i64> {
        match load(data).unwrap() {
            Value::Tuple(items, _) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => *i,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integer_opcodes() {
        // (K 255, M 65535, J -2, LONG1 -1 in one byte, LONG1 2^40)
        let mut p = vec![0x80, 2, b'(', b'K', 255, b'M', 0xff, 0xff, b'J'];
        p.extend_from_slice(&(-2i32).to_le_bytes());
        p.extend_from_slice(&[0x8a, 1, 0xff, 0x8a, 6, 0, 0, 0, 0, 0, 1, b't', b'.']);
        assert_eq!(ints(&p), vec![255, 65535, -2, -1, 1 << 40]);
    }

    #[test]
    fn memo_and_stack_globals() {
        // protocol 4: "collections" "OrderedDict" STACK_GLOBAL MEMOIZE, EMPTY_TUPLE, REDUCE,
        // then BINGET 0 fetches the global again.
        let mut p = vec![0x80, 4, 0x8c, 11];
        p.extend_from_slice(b"collections");
        p.extend_from_slice(&[0x8c, 11]);
        p.extend_from_slice(b"OrderedDict");
        p.extend_from_slice(&[0x93, 0x94, b')', b'R', b'0', b'h', 0, b')', b'R', b'.']);
        assert!(matches!(load(&p).unwrap(), Value::Dict(..)));
        assert_eq!(
            resolve_global("torch", "HalfStorage"),
            Some(Global::Storage(Dtype::F16))
        );
        assert_eq!(resolve_global("torch", "save"), None);
        assert_eq!(resolve_global("builtins", "getattr"), None);
    }
}
