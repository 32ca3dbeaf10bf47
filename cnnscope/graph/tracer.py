"""Record a model's forward pass into a :class:`~cnnscope.graph.dataflow.Graph`, on meta tensors.

A ``TorchDispatchMode`` sees every ATen op the forward runs (module calls and functional ops
alike, whatever Python control flow chose), and global module hooks keep a stack of the modules
being run so each op is attributed to the innermost one. The model is never run on real data and
never mutated: a model with real weights is replaced by a meta *shadow* first.
"""
from __future__ import annotations

import contextlib

import warnings
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from ..errors import CnnscopeError, InputTooSmallError
from ..ops.args import bind_schema
from ..ops.registry import op_registrar
from .dataflow import Graph, ModuleCall, ModuleInfo, Node, Value, ValueRef

#: op packet -> check(packet name, {argument name: value}) giving the problem (None if none), which the
#: recorder raises as an InputTooSmallError naming the arithmetic
SHAPE_CHECKS: dict[Any, Callable[[str, dict], str | None]] = {}


#: op packet -> fn(args, kwargs) giving the meta output directly, for ops whose meta kernel is a slow
#: Python decomposition (batch norm takes ~5 ms a call on meta; the shapes are trivial)
FAST_META: dict[Any, Callable[[tuple, dict], Any]] = {}


def _batch_norm_meta(args, kwargs):
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    return torch.empty_like(x), x.new_empty((c,)), x.new_empty((c,))


def _inplace_meta(args, kwargs):
    return args[0]


def _like_meta(args, kwargs):
    return torch.empty_like(args[0])


FAST_META[torch.ops.aten.native_batch_norm] = _batch_norm_meta
# hardtanh (ReLU6) decomposes on meta through several Python ops, ~11 ms a call
FAST_META[torch.ops.aten.hardtanh_] = _inplace_meta
FAST_META[torch.ops.aten.hardtanh] = _like_meta
FAST_META[torch.ops.aten._native_batch_norm_legit_no_training] = _batch_norm_meta


register_shape_check = op_registrar(SHAPE_CHECKS, "shape check")


class _Recorder(TorchDispatchMode):
    def __init__(self, names: dict[int, str], tensor_names: dict[int, tuple[str, str]]) -> None:
        super().__init__()
        self.names = names                  # id(module) -> qualified name
        self.tensor_names = tensor_names    # id(tensor) -> ("param"|"buffer", name)
        self.nodes: list[Node] = []
        self.values: dict[int, Value] = {}
        self.value_of: dict[int, int] = {}  # id(tensor) -> latest value id
        self.keep: list[torch.Tensor] = []  # keeps ids unique while recording
        self.scope: list[str] = [""]
        self.calls: list[ModuleCall] = []
        self.open_calls: list[ModuleCall] = []
        self.param_values: dict[str, int] = {}
        self.saved: dict[int, None] = {}    # value ids autograd saved for the backward (training), in order

    # -- values -------------------------------------------------------------------------------
    def _new_value(self, t: torch.Tensor, producer: int, index: int = 0) -> int:
        vid = len(self.values)
        self.values[vid] = Value(vid, tuple(int(d) for d in t.shape), str(t.dtype).replace("torch.", ""),
                                 t.element_size(), producer, index)
        self.value_of[id(t)] = vid
        self.keep.append(t)
        return vid

    def _source(self, t: torch.Tensor, kind: str, target: str) -> int:
        node = Node(len(self.nodes), kind, target, self.scope[-1])
        self.nodes.append(node)
        vid = self._new_value(t, node.index)
        node.outputs.append(vid)
        if kind in ("param", "buffer"):
            self.param_values[target] = vid
        return vid

    def value_id(self, t: torch.Tensor) -> int:
        vid = self.value_of.get(id(t))
        if vid is not None:
            return vid
        named = self.tensor_names.get(id(t))
        if named is not None:
            return self._source(t, named[0], named[1])
        return self._source(t, "const", "constant")

    def add_input(self, t: torch.Tensor, name: str) -> int:
        return self._source(t, "input", name)

    # -- ops ----------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        check = SHAPE_CHECKS.get(func.overloadpacket)
        if check is not None:
            problem = check(str(func.overloadpacket), bind_schema(func._schema, args, kwargs))
            if problem:
                raise InputTooSmallError(
                    f"input too small: {self.scope[-1] or 'the model'}: {problem}; use a larger --input-size")
        inputs: list[int] = []

        def to_ref(x):
            if isinstance(x, torch.Tensor):
                vid = self.value_id(x)
                inputs.append(vid)
                return ValueRef(vid)
            return x

        rec_args = tree_map(to_ref, tuple(args))
        rec_kwargs = tree_map(to_ref, dict(kwargs))
        fast = FAST_META.get(func.overloadpacket)
        try:
            if fast is not None and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "meta":
                out = fast(args, kwargs)
            else:
                out = func(*args, **kwargs)
        except (RuntimeError, ValueError, IndexError) as e:
            msg = str(e).splitlines()[0]
            if "too small" in msg.lower() or "output size" in msg.lower():
                raise InputTooSmallError(
                    f"input too small: {self.scope[-1] or 'the model'} ({func}): {msg}; use a larger --input-size") from None
            raise
        schema_returns = func._schema.returns
        aliases = any(r.alias_info is not None for r in schema_returns)
        in_place = any(r.alias_info is not None and r.alias_info.is_write for r in schema_returns)
        node = Node(len(self.nodes), "op", str(func), self.scope[-1], rec_args, rec_kwargs, inputs, [],
                    func, aliases, in_place=in_place)
        self.nodes.append(node)
        flat_out, _ = tree_flatten(out)
        for i, t in enumerate(x for x in flat_out if isinstance(x, torch.Tensor)):
            node.outputs.append(self._new_value(t, node.index, i))
        return out

    # -- module hooks -------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        flat, _ = tree_flatten(args)
        ins = [self.value_id(t) for t in flat if isinstance(t, torch.Tensor)]
        call = ModuleCall(name, ins, [], len(self.nodes))
        self.open_calls.append(call)
        self.calls.append(call)
        self.scope.append(name)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        name = self.names.get(id(module))
        if name is None or not self.open_calls or self.open_calls[-1].name != name:
            return
        call = self.open_calls.pop()
        self.scope.pop()
        flat, _ = tree_flatten(output)
        call.outputs = [self.value_id(t) for t in flat if isinstance(t, torch.Tensor)]
        call.last_node = len(self.nodes)


def _module_infos(model: nn.Module) -> dict[str, ModuleInfo]:
    infos: dict[str, ModuleInfo] = {}
    for name, mod in model.named_modules():
        seen: set[int] = set()
        total = trainable = 0
        for p in mod.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        own = sum(p.numel() for p in mod.parameters(recurse=False))
        depth = 0 if name == "" else name.count(".") + 1
        infos[name] = ModuleInfo(name, type(mod).__name__, depth, total, own, trainable)
    return infos


def trace(model: nn.Module, example_inputs: tuple[torch.Tensor, ...] | torch.Tensor,
          *, already_meta: bool = False, training: bool = False) -> tuple[Graph, Any]:
    """Run ``model`` once on meta tensors and record what happened.

    ``example_inputs`` are real or meta tensors (only their shapes and dtypes matter). Returns the
    graph and the (meta) output. The model must already be on meta when ``already_meta`` is set;
    otherwise a meta shadow is made so the caller's model is untouched.

    ``training``: record with autograd on (the caller puts the model in train mode), so every value
    knows whether it requires a gradient and ``graph.saved`` lists the values autograd saved for the
    backward (through ``torch.autograd.graph.saved_tensors_hooks``).
    """
    from .meta_build import meta_shadow

    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not already_meta and (len(list(model.parameters())) or len(list(model.buffers()))) and not _all_meta(model):
        model = meta_shadow(model)
    inputs = tuple(torch.empty(x.shape, dtype=x.dtype, device="meta") for x in example_inputs)

    names: dict[int, str] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        names.setdefault(id(mod), name)
    tensor_names: dict[int, tuple[str, str]] = {}
    for name, p in model.named_parameters(remove_duplicate=True):
        tensor_names[id(p)] = ("param", name)
    for name, b in model.named_buffers(remove_duplicate=True):
        tensor_names[id(b)] = ("buffer", name)

    rec = _Recorder(names, tensor_names)
    rec.input_ids = [rec.add_input(x, f"input{i}") for i, x in enumerate(inputs)]
    if already_meta:
        from .meta_build import strip_user_hooks

        strip_user_hooks(model)      # cnnscope's own meta model: the user's hooks never see its tensors
    with _without_global_hooks():
        return _record(model, inputs, rec, training)


#: torch's tables of hooks registered for every module (register_module_forward_hook & co.)
_GLOBAL_HOOK_TABLES = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
                       "_global_backward_pre_hooks", "_global_backward_hooks")


@contextlib.contextmanager
def _without_global_hooks():
    """The user's global module hooks are set aside while cnnscope records (and put back after)."""
    saved = {}
    for name in _GLOBAL_HOOK_TABLES:
        table = getattr(nn.modules.module, name, None)
        if table is not None:
            saved[name] = table.copy()
            table.clear()
    try:
        yield
    finally:
        for name, content in saved.items():
            table = getattr(nn.modules.module, name)
            table.clear()
            table.update(content)


def _autograd(rec: "_Recorder", training: bool):
    """no_grad for inference; for training, grad on and every tensor autograd saves noted."""
    if not training:
        return torch.no_grad()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.enable_grad())

    def pack(t):
        vid = rec.value_of.get(id(t))
        if vid is not None:
            rec.saved.setdefault(vid, None)
        return t

    stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
    return stack


def _record(model: nn.Module, inputs: tuple, rec: "_Recorder", training: bool = False) -> tuple[Graph, Any]:
    pre = nn.modules.module.register_module_forward_pre_hook(rec.pre_hook)
    post = nn.modules.module.register_module_forward_hook(rec.post_hook, always_call=True)
    try:
        with warnings.catch_warnings(), _autograd(rec, training), rec:
            warnings.simplefilter("ignore")
            out = model(*inputs)
    except CnnscopeError:
        raise
    except NotImplementedError as e:
        raise CnnscopeError(
            f"the model's forward cannot run on meta tensors ({str(e).splitlines()[0][:160]}); it reads "
            f"tensor values (e.g. .item() or data-dependent control flow), which shape analysis cannot follow") from None
    except (RuntimeError, TypeError, ValueError, AssertionError, IndexError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        where = rec.scope[-1] or "the model"
        fix = ("train-mode batch norm needs more than one value per channel: use --batch-size 2 or more"
               if "more than 1 value per channel" in msg else "check --input-size (and the channel count)")
        raise CnnscopeError(
            f"forward failed in {where} for input {tuple(inputs[0].shape)}: {msg[:200]}; {fix}") from None
    except RecursionError:
        raise CnnscopeError("the model nests too deeply to analyse (Python's recursion limit was reached in its "
                            "forward)") from None
    except Exception as e:   # KeyError, AttributeError, ZeroDivisionError ... in the model's own forward
        msg = str(e).splitlines()[0] if str(e) else ""
        where = rec.scope[-1] or "the model"
        raise CnnscopeError(f"forward failed in {where}: the model's code raised {type(e).__name__}"
                            f"{': ' + msg[:200] if msg else ''}") from None
    except BaseException as e:   # SystemExit, or a KeyboardInterrupt the model raised itself
        from ..errors import user_code_error

        raise user_code_error(e, f"the forward of {rec.scope[-1] or 'the model'}") from None
    finally:
        pre.remove()
        post.remove()
    flat_out, _ = tree_flatten(out)
    output_ids = [rec.value_of[id(t)] for t in flat_out if isinstance(t, torch.Tensor) and id(t) in rec.value_of]
    graph = Graph(rec.nodes, rec.values, rec.calls, _module_infos(model), rec.input_ids, output_ids, rec.param_values)
    if training:
        for vid, t in enumerate(rec.keep):          # autograd marks outputs after dispatch: read them now
            rec.values[vid].requires_grad = bool(t.requires_grad)
        graph.saved = list(rec.saved)
        graph.training = True
    return graph, out


def _all_meta(model: nn.Module) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return bool(tensors) and all(t.device.type == "meta" for t in tensors)
