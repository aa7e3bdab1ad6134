"""The modelplane Pulumi program: one `pulumi up` per environment (stacks/Pulumi.<stack>.yaml)."""

import pulumi

from infra.config import load_stack_config
from infra.platform import Platform, PlatformArgs
from infra.stack import Infra

config = load_stack_config()
infra = Infra(config)
Platform("platform", PlatformArgs(config=config, outputs=infra.outputs, node_pools=infra.node_pools))
for key, value in infra.outputs.items():
    pulumi.export(key, value)
