"""Operations: the instance registry every service keeps and the OpsService every process serves."""

from svc_common.ops._instances import Instance, InstanceRegistry, create_instance_table_op, instance_table

__all__ = ["Instance", "InstanceRegistry", "create_instance_table_op", "instance_table"]
