"""Print docs/cli.md from the click help of every command (`make docs` rewrites the file).

python pipelines/gen_cli_docs.py > docs/cli.md
"""

from __future__ import annotations

import click

from filmcolor.cli import main


def render() -> str:
    """The CLI reference as Markdown."""
    parts = [
        "# Command-line reference",
        "",
        "Generated from `filmcolor --help` by `pipelines/gen_cli_docs.py` (`make docs`); "
        "do not edit by hand.",
        "",
    ]
    # The group's own context settings (-h), so that the text does not depend on whether a
    # command has already been run in this process (click caches each command's help option).
    settings = {**main.context_settings, "terminal_width": 100}
    with click.Context(main, info_name="filmcolor", **settings) as ctx:
        parts += ["## filmcolor", "", "```", main.get_help(ctx), "```", ""]
        for name in main.list_commands(ctx):
            command = main.get_command(ctx, name)
            assert command is not None
            with click.Context(command, info_name=name, parent=ctx, terminal_width=100) as sub:
                parts += [f"## filmcolor {name}", "", "```", command.get_help(sub), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
