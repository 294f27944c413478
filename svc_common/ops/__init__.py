"""Operations: the instance registry every service keeps and the OpsService every process serves."""

from svc_common.ops._instances import Instance, InstanceRegistry, create_instance_table_op, instance_table
from svc_common.ops._key_check import check_keyring_in_database, create_key_check_table_op, key_check_table

__all__ = [
    "Instance",
    "InstanceRegistry",
    "check_keyring_in_database",
    "create_instance_table_op",
    "create_key_check_table_op",
    "instance_table",
    "key_check_table",
]
