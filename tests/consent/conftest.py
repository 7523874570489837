"""The consent tests drive the real CLI too: the CRM tests' `cli` fixture on the test database."""

from tests.crm.conftest import cli, config_file

__all__ = ["cli", "config_file"]
