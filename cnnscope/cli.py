"""The ``cnnscope`` command line: a thin layer that parses, calls the library and renders.

Commands live in ``cnnscope/commands/<name>.py`` and are imported only when run, so ``cnnscope
--help`` never imports torch. Errors a user can cause exit with code 2 and one line; ``--debug``
shows the traceback instead. Exit code 1 means a check or budget failed.
"""
from __future__ import annotations

import functools
import importlib
import sys
import warnings

import click

#: command name -> (module, function, one-line help shown by `cnnscope --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "summary": ("cnnscope.commands.summary", "summary", "Per-layer params, MACs, output shapes, receptive field."),
    "list": ("cnnscope.commands.list_models", "list_models", "Every model name cnnscope knows, with params and MACs."),
    "explain": ("cnnscope.commands.explain", "explain", "Show how one layer's size, params, MACs and RF are computed."),
    "prune": ("cnnscope.commands.prune", "prune", "Structured (channel) or unstructured pruning into an artifact."),
    "reduce": ("cnnscope.commands.rewrite", "reduce", "Insert 1×1 convs that reduce channels before K×K convs."),
    "stride": ("cnnscope.commands.rewrite", "stride", "Replace conv + pooling by a stride-2 conv."),
    "factorize": ("cnnscope.commands.rewrite", "factorize", "Factorize large kernels (stacked 3×3, 1×n+n×1, low rank)."),
    "advise": ("cnnscope.commands.advise", "advise", "Rank where each compression method would save the most."),
    "export": ("cnnscope.commands.export", "export", "Export to ONNX and verify it with onnxruntime."),
    "quantize": ("cnnscope.commands.quantize", "quantize", "Quantize to int8 ONNX, verified against the float model."),
    "report": ("cnnscope.commands.report", "report", "A self-contained HTML report with charts (or one chart as SVG/PNG)."),
    "profile": ("cnnscope.commands.profile", "profile", "Measured latency per layer (PyTorch, onnxruntime), with a roofline."),
    "check": ("cnnscope.commands.check", "check", "Fail (exit 1) when a model exceeds its size budgets."),
    "compare": ("cnnscope.commands.compare", "compare", "Per-layer diff of two models (e.g. before/after pruning)."),
}


#: commands that load no model, hence run no code and take no trust options
NO_MODEL_COMMANDS = {"list"}

TRUST_CODE_HELP = ("Allow the code file an artifact names (FILE.py beside it) to run. Without it, an artifact "
                   "whose model is user code is refused: a file never chooses code to run.")
TRUST_HELP = ("Allow this code file or module (repeatable), e.g. --trust nets.py or --trust mypkg.models; "
              "also read from trust = [...] under [tool.cnnscope] in ./pyproject.toml.")


def with_trust_options(command: click.Command) -> click.Command:
    """Add ``--trust-code`` and ``--trust REF`` to a command that loads models, and run its body
    under that policy (merged with the project's ``[tool.cnnscope] trust`` list)."""
    if getattr(command, "_cnnscope_trust", False):
        return command
    command.params.append(click.Option(["--trust-code"], is_flag=True, help=TRUST_CODE_HELP))
    command.params.append(click.Option(["--trust", "trust_refs"], multiple=True, metavar="FILE|MODULE",
                                       help=TRUST_HELP))
    body = command.callback

    @functools.wraps(body)
    def run(*args, trust_code=False, trust_refs=(), **kwargs):
        from .loading.trust import Trust, project_trust, trusting

        policy = Trust(files=trust_code).merged(Trust.of(list(trust_refs))).merged(project_trust())
        with trusting(policy):
            return body(*args, **kwargs)

    command.callback = run
    command._cnnscope_trust = True   # type: ignore[attr-defined]
    return command


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr, _ = COMMANDS[name]
        module = importlib.import_module(mod)      # a command's module is part of the package: never optional
        command = getattr(module, attr)
        return command if name in NO_MODEL_COMMANDS else with_trust_options(command)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


HELP = """Analyse, compress and export convolutional networks.

\b
MODEL (every command) is one of:
  resnet50, vgg16, ...        a torchvision classification model (`cnnscope list`)
  lenet5, zfnet, mnist_cnn    built-in classics from the source documents
  path/to/file.py:fn          your code: a callable returning an nn.Module
  package.module:fn           the same, importable
  model.pt                    a cnnscope artifact (from save_model, prune, ...)
  model.onnx                  an ONNX file (summary, check, compare)

\b
Convention: 1 MAC = one multiply-accumulate of conv/linear/matmul/attention
(torchvision's `_ops`); FLOPs = 2 × MACs. Analysis runs on meta tensors:
no weights are allocated or downloaded.

\b
Exit codes: 0 ok, 1 a check or budget failed, 2 bad input.

\b
Examples:
  cnnscope summary resnet50
  cnnscope summary vit_b_16 --weights DEFAULT --depth 2
  cnnscope explain resnet50 layer1.0.conv2
  cnnscope prune resnet50 --ratio 0.5 -o resnet50-pruned.pt
  cnnscope export resnet50-pruned.pt -o resnet50-pruned.onnx
"""


@click.group(cls=LazyGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="cnnscope")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """cnnscope's own warnings as one ``warning: ...`` line; others as Python prints them."""
    from .loading.trust import CodeChangedWarning

    if issubclass(category, CodeChangedWarning) or filename.startswith(_PACKAGE_DIR):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning
_PACKAGE_DIR = __file__.rsplit("/", 1)[0]


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps library errors to one line and an exit code.

    0 ok; 1 a check or budget failed; 2 bad input (also whatever the model's own code raises,
    ``SystemExit`` included, so a gate can never pass by exiting); 3 a bug in cnnscope; 128+N when
    signal N (SIGINT, SIGTERM, SIGHUP) stopped it, after every temporary file was removed.
    """
    from . import signals
    from .fileio import command_scope

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")   # non-UTF-8 file names print, escaped
        except (AttributeError, ValueError):
            pass
    from .errors import IN_CLI

    signals.install()
    warnings.showwarning = _show_warning
    in_cli = IN_CLI.set(True)
    try:
        with command_scope():
            cli.main(args=argv, prog_name="cnnscope", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt, SystemExit) as e:
        got = signals.received()
        if got is not None:
            # every write is atomic and every temporary file is removed on the way out
            click.echo(f"Interrupted ({signals.name(got)}); no output file was written.", err=True)
            return signals.exit_code(got)
        if debug:
            raise
        from .errors import user_code_error

        cause = e.__context__ if isinstance(e, click.exceptions.Abort) and e.__context__ is not None else e
        click.echo(f"Error: {user_code_error(cause, 'the command')}", err=True)
        return 2
    except click.exceptions.UsageError as e:
        # one line, like every other bad input; the usage text is one --help away
        where = e.ctx.command_path if e.ctx is not None else "cnnscope"
        click.echo(f"Error: {e.format_message()} (see '{where} --help')", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except RecursionError:
        if debug:
            raise
        click.echo("Error: the model nests too deeply to analyse (Python's recursion limit was reached); "
                   "flatten its module tree or raise sys.setrecursionlimit in your own code", err=True)
        return 2
    except MemoryError:
        if debug:
            raise
        click.echo("Error: out of memory; use a smaller --input-size or --batch-size", err=True)
        return 2
    except Exception as e:
        from .errors import CheckFailed, CnnscopeError

        if debug and not isinstance(e, CheckFailed):
            raise
        if isinstance(e, CnnscopeError):
            click.echo(f"Error: {e}", err=True)
            return e.exit_code
        click.echo(f"Error: internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                   f"(run with --debug for the traceback, and please report it)", err=True)
        return 3
    except BaseException as e:   # GeneratorExit & co. raised by the model's own code
        if debug:
            raise
        from .errors import user_code_error

        click.echo(f"Error: {user_code_error(e, 'the command')}", err=True)
        return 2
    finally:
        warnings.showwarning = _default_showwarning
        IN_CLI.reset(in_cli)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
