"""Generated documentation pages: the CLI reference (from the typer app) and the API index.

Used two ways:

* as an mkdocs hook (``hooks:`` in mkdocs.yml): ``on_files`` adds ``reference/cli.md`` and
  ``reference/api.md``, generated at build time, so they never go stale or get committed;
* as a script: ``python scripts/docs_hooks.py cli`` (or ``api``) prints the page.

The CLI page walks the click command tree that typer builds (every command and sub-command,
its usage, help and options); the API page lists ``tfcnn.__all__`` for mkdocstrings.
"""

from __future__ import annotations

import sys
from typing import Any

CLI_PAGE = "reference/cli.md"
API_PAGE = "reference/api.md"
#: Modules documented whole on the API page, after the public names.
API_MODULES = (
    "tfcnn.api",
    "tfcnn.extras",
    "tfcnn.errors",
    "tfcnn.io.tables",
    "tfcnn.inference.scan",
    "tfcnn.evaluation.evaluate",
)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no pipes, no raw HTML)."""
    flat = " ".join(str(text).split())
    return flat.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _default(param: Any) -> str:
    if param.required:
        return "required"
    default = param.default
    if default is None or default is False or default == ():
        return ""
    if callable(default):
        return "dynamic"
    return f"`{default}`"


def _type_name(param: Any, ctx: Any) -> str:
    """The value's type as ``--help`` shows it (typer >= 0.29 has its own click)."""
    if hasattr(param, "display_type"):
        return str(param.display_type(ctx)).strip("<>")
    return str(param.type.name)


def _option_row(param: Any, ctx: Any) -> str | None:
    if param.hidden or "--help" in param.opts:
        return None
    if param.param_type_name == "argument":
        names = f"`{param.name.upper()}` (argument)"
    else:
        names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    help_text = getattr(param, "help", None) or ""
    return f"| {names} | {_cell(_type_name(param, ctx))} | {_default(param)} | {_cell(help_text)} |"


def _command_section(path: tuple[str, ...], cmd: Any, out: list[str]) -> None:
    """One command's heading, help, usage and options, then its sub-commands."""
    ctx = cmd.context_class(cmd, info_name=" ".join(path))
    level = "#" * min(len(path) + 1, 4)
    out.append(f"{level} `{' '.join(path)}`\n")
    help_text = (cmd.help or cmd.short_help or "").strip()
    if help_text:
        out.append(help_text.split("\f")[0].strip() + "\n")
    out.append(f"```text\n{cmd.get_usage(ctx).strip()}\n```\n")
    rows = [r for p in cmd.get_params(ctx) if (r := _option_row(p, ctx)) is not None]
    if rows:
        out.append("| option | type | default | what it does |")
        out.append("|---|---|---|---|")
        out.extend(rows)
        out.append("")
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _command_section((*path, name), sub, out)


def cli_markdown() -> str:
    """The CLI reference page, from the typer app as it is now."""
    import typer

    from tfcnn.apps.cli import app

    group = typer.main.get_command(app)
    out = [
        "# Command-line reference\n",
        "Generated from the `tfcnn` command tree when the site is built "
        "(`scripts/docs_hooks.py`), so it matches the installed version. "
        "`tfcnn COMMAND --help` shows the same. Bad input ends with a message naming the "
        "file, line or ID and exit code 2: see [Bad input](../bad_inputs.md).\n",
    ]
    _command_section(("tfcnn",), group, out)
    return "\n".join(out) + "\n"


def api_markdown() -> str:
    """The API reference page: every name of ``tfcnn.__all__``, then the main modules."""
    import tfcnn
    from tfcnn import _EXPORTS

    out = [
        "# Python API reference\n",
        "Generated from the docstrings when the site is built. `import tfcnn` is light: "
        "each name below is imported on first use. The names are `tfcnn.__all__`; "
        "after them, whole modules that are often used directly.\n",
        "## `tfcnn` (the public names)\n",
        f"`tfcnn.__version__` is `{tfcnn.__version__}`.\n",
    ]
    for name, module in _EXPORTS.items():
        out.append(f"### `tfcnn.{name}`\n")
        out.append(f"::: {module}.{name}\n    options:\n      show_root_heading: false\n")
    for module in API_MODULES:
        out.append(f"## `{module}`\n")
        out.append(f"::: {module}\n    options:\n      show_root_heading: false\n")
    return "\n".join(out) + "\n"


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the site."""
    from mkdocs.structure.files import File

    for page, make in ((CLI_PAGE, cli_markdown), (API_PAGE, api_markdown)):
        files.append(File.generated(config, page, content=make()))
    return files


if __name__ == "__main__":
    pages = {"cli": cli_markdown, "api": api_markdown}
    if len(sys.argv) != 2 or sys.argv[1] not in pages:
        sys.exit(f"usage: python {sys.argv[0]} {{{'|'.join(pages)}}}")
    sys.stdout.write(pages[sys.argv[1]]())
