"""The modelplane Pulumi program: one `pulumi up` per environment (stacks/Pulumi.<stack>.yaml)."""

import pulumi

from infra.config import load_stack_config
from infra.stack import Infra

config = load_stack_config()
infra = Infra(config)
for key, value in infra.outputs.items():
    pulumi.export(key, value)
