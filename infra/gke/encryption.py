"""Application-layer Secrets encryption: etcd holds the cluster's Secrets (notebook and hub tokens) encrypted with a
Cloud KMS key of the stack's own, which only GKE's service agent may use.

The key ring and key are protected: KMS never deletes a key ring, and destroying the key would make every Secret of
the cluster unreadable. A stack that is destroyed and created again under the same name therefore needs the key ring
imported (`pulumi import`), which is why the dev stack turns this off.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import kms

ROTATION = f"{90 * 86400}s"


def gke_service_agent(project_number: str) -> str:
    return f"serviceAccount:service-{project_number}@container-engine-robot.iam.gserviceaccount.com"


@dataclass(frozen=True)
class SecretsKeyArgs:
    name: str
    region: str
    project_number: pulumi.Input[str]


class SecretsKey(pulumi.ComponentResource):
    key: kms.CryptoKey
    grant: kms.CryptoKeyIAMMember  # the cluster must wait for it: GKE checks it can use the key

    def __init__(self, name: str, args: SecretsKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:SecretsKey", name, None, opts)
        protected = pulumi.ResourceOptions(parent=self, protect=True)
        ring = kms.KeyRing(name, name=args.name, location=args.region, opts=protected)
        self.key = kms.CryptoKey(name, name="secrets", key_ring=ring.id, purpose="ENCRYPT_DECRYPT",
                                     rotation_period=ROTATION, opts=protected)
        self.grant = kms.CryptoKeyIAMMember(
            f"{name}-gke", crypto_key_id=self.key.id, role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=pulumi.Output.from_input(args.project_number).apply(gke_service_agent),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"key": self.key.id})
