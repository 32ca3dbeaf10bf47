"""The ``cnnscope`` command line: a thin layer that parses, calls the library and renders.

Commands live in ``cnnscope/commands/<name>.py`` and are imported only when run, so ``cnnscope
--help`` never imports torch. Errors a user can cause exit with code 2 and one line; ``--debug``
shows the traceback instead. Exit code 1 means a check or budget failed.
"""
from __future__ import annotations

import importlib
import sys

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
    "check": ("cnnscope.commands.check", "check", "Fail (exit 1) when a model exceeds its size budgets."),
    "compare": ("cnnscope.commands.compare", "compare", "Per-layer diff of two models (e.g. before/after pruning)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr, _ = COMMANDS[name]
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                return None
            raise
        return getattr(module, attr)

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


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps library errors to one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="cnnscope", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C into Abort; every write is atomic, so nothing partial is left behind
        click.echo("Interrupted; no output file was written.", err=True)
        return 130
    except click.exceptions.UsageError as e:
        # one line, like every other bad input; the usage text is one --help away
        where = e.ctx.command_path if e.ctx is not None else "cnnscope"
        click.echo(f"Error: {e.format_message()} (see '{where} --help')", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
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


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
