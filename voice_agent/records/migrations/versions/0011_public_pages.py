"""each business's postal address and public e-mail, shown on its public SMS, privacy and terms
pages

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("businesses") as table:
        table.add_column(sa.Column("address", sa.Text, nullable=False, server_default=""))
        table.add_column(
            sa.Column("contact_email", sa.String(200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("businesses") as table:
        table.drop_column("contact_email")
        table.drop_column("address")
