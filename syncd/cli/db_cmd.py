"""`syncd db upgrade|current`: schema migrations."""

from __future__ import annotations

import typer

from syncd.cli.common import fail, handle_errors, open_context, out_console
from syncd.exit_codes import ExitCode


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)

    @db.command("upgrade")
    @handle_errors
    def upgrade() -> None:
        """Create or upgrade the schema to the newest revision (safe to repeat)."""
        from syncd.migrate import current_revision

        ctx = open_context(migrate=True)
        out_console.print(f"database schema at revision {current_revision(ctx.engine)}")
        ctx.close()

    @db.command("current")
    @handle_errors
    def current() -> None:
        """Show the schema revision and whether it is the newest (exit 1 if it is not:
        run `syncd db upgrade`). Creates nothing."""
        from syncd.migrate import current_revision, head_revision

        ctx = open_context(require_schema=False)
        try:
            now, head = current_revision(ctx.engine), head_revision()
        finally:
            ctx.close()
        out_console.print(f"current {now}, head {head}")
        if now != head:
            raise fail("the schema is not at head: run `syncd db upgrade`", ExitCode.FAILED)

    app.add_typer(db, name="db")
