"""profile: the expiry sweep's index on profile_tag (name, expires_us); one customer number per profile, kept
by the database (profile_customer).

The time sweep looks for written tag values that expired since the last sweep (name IN (…) AND expires_us in a
range): with an index on name alone it read every value of those tags. ix_profile_tag_name_expiry serves that
range, and by its prefix every read by name, so it replaces ix_profile_tag_name.

A profile holds at most one customer number (ID_TYPE_CUSTOMER): the resolver refuses a second one, and now the
database does too, portably (a partial unique index on profile_identity would not be: Dameng has none). The
customer number of each profile goes into profile_customer, keyed by profile_id, in the transaction that links
it (ProfileStore.insert_links / delete_link / move_rows / delete_person); a second one fails on that key. The
upgrade fills it from the identities: it fails on the key if a profile holds two customer numbers already (find
them with SELECT profile_id FROM profile_identity WHERE id_type = 2 GROUP BY profile_id HAVING COUNT(*) > 1 and
UnlinkIdentity one of each before upgrading).

Revision ID: profile_0007
Revises: profile_0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.errors import ConfigError

revision = "profile_0007"
down_revision = "profile_0006"
branch_labels = None
depends_on = None

ID_TYPE_CUSTOMER = 2  # qiming.common.v1.IdType, as of this revision


DUPLICATE_CUSTOMERS_SQL = (
    f"SELECT profile_id FROM profile_identity WHERE id_type = {ID_TYPE_CUSTOMER} "
    "GROUP BY profile_id HAVING COUNT(*) > 1"
)


def _refuse_profiles_with_two_customers() -> None:
    # Checked before any DDL: Dameng does not roll DDL back, so a failure later would leave the index dropped and
    # the table created, and the retry after the data fix would fail on "already exists". A ConfigError stops the
    # process with one line and exit 2 (not restarted by the systemd unit: a restart cannot fix data).
    if op.get_context().as_sql:
        return
    found = op.get_bind().execute(sa.text(DUPLICATE_CUSTOMERS_SQL)).scalars().all()
    if found:
        shown = ", ".join(sorted(found)[:5])
        raise ConfigError(
            f"svc_profile cannot upgrade to profile_0007: {len(found)} profile(s) hold more than one customer number "
            f"(e.g. {shown}); UnlinkIdentity all but one customer number of each (list them with: "
            f"{DUPLICATE_CUSTOMERS_SQL}), then start again"
        )


def upgrade() -> None:
    _refuse_profiles_with_two_customers()
    op.create_index("ix_profile_tag_name_expiry", "profile_tag", ["name", "expires_us"], unique=False)
    op.drop_index("ix_profile_tag_name", table_name="profile_tag")
    op.create_table(
        "profile_customer",
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("profile_id"),
        sa.UniqueConstraint("customer_id", name="uq_profile_customer_id"),
    )
    op.execute(
        "INSERT INTO profile_customer (profile_id, customer_id) "
        f"SELECT profile_id, id_value FROM profile_identity WHERE id_type = {ID_TYPE_CUSTOMER}"
    )


def downgrade() -> None:
    op.drop_table("profile_customer")
    op.create_index("ix_profile_tag_name", "profile_tag", ["name"], unique=False)
    op.drop_index("ix_profile_tag_name_expiry", table_name="profile_tag")
