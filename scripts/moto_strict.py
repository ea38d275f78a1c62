"""moto_server in its auth mode, closer to AWS, for the containerise test stack.

Usage: python moto_strict.py -H HOST -p PORT   (the same arguments as moto_server)

moto's auth mode (INITIAL_NO_AUTH_ACTION_COUNT) checks SigV4 signatures, identity
policies and, for AssumeRole, the role's trust. Three gaps stop it from judging
what containerise does the way AWS would; this launcher closes them before it
hands over to moto's own server:

- ECR's API names no resource to moto's policy check, so a grant scoped to one
  repository (what setup writes) never matched. Each ECR call now names the
  repository it acts on, as IAM sees it in AWS.
- An account needs someone allowed to do everything, and moto's state reset
  (POST /moto-api/reset) would delete any IAM user made for that. The key in
  STACK_ROOT_ACCESS_KEY_ID / STACK_ROOT_SECRET_ACCESS_KEY stands for the
  account's root user: its signature is still checked, and it is allowed
  everything, as root is.
- sts:AssumeRoleWithWebIdentity is unsigned in AWS (the token is the
  credential); moto's auth mode would fail it for lacking a signature.
- In one account, a role whose trust names a user's ARN lets that user assume
  it with no identity policy of its own (the blog's user has none); moto asked
  for both.
- ECR speaks JSON, and AWS words its refusals as ECR errors
  (AccessDeniedException, UnrecognizedClientException,
  InvalidSignatureException); moto answered them in IAM's XML, which no SDK
  reads as ECR's.

Nothing else changes: any other key is checked by moto as it stands.
"""

import json
import os
import sys

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, JsonRESTError, SignatureDoesNotMatchError
from moto.ecr.responses import ECRResponse
from moto.iam import access_control
from moto.server import main

ROOT_KEY_ID = os.environ["STACK_ROOT_ACCESS_KEY_ID"]
ROOT_SECRET = os.environ["STACK_ROOT_SECRET_ACCESS_KEY"]
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class RootAccessKey:
    """The account's root user: signs like any key, may do anything."""

    def __init__(self, account_id, partition):
        self.account_id = account_id
        self.partition = partition

    @property
    def arn(self):
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    def create_credentials(self):
        return access_control.Credentials(ROOT_KEY_ID, ROOT_SECRET)

    def collect_policies(self):
        return [json.dumps(ALLOW_ALL)]


_create_access_key = access_control.create_access_key


def create_access_key(account_id, partition, access_key_id, headers):
    if access_key_id == ROOT_KEY_ID and "X-Amz-Security-Token" not in headers:
        return RootAccessKey(account_id, partition)
    return _create_access_key(account_id, partition, access_key_id, headers)


access_control.create_access_key = create_access_key


def ecr_resource(self):
    """The repository an ECR call acts on, as IAM's policy check sees it."""
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        return "*"
    name = body.get("repositoryName") if isinstance(body, dict) else None
    if not name:
        return "*"
    account = body.get("registryId") or self.current_account
    return f"arn:aws:ecr:{self.region}:{account}:repository/{name}"


ECRResponse._determine_resource = ecr_resource

_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action


ECR_ERRORS = {
    AccessDeniedError: "AccessDeniedException",
    InvalidClientTokenIdError: "UnrecognizedClientException",
    SignatureDoesNotMatchError: "InvalidSignatureException",
}


def authorize(self, iam_request_cls, resource="*"):
    if "Authorization" not in self.headers and self._get_action() == "AssumeRoleWithWebIdentity":
        return  # unsigned in AWS: STS judges the token and the role's trust
    if not isinstance(self, ECRResponse):
        return _authorize(self, iam_request_cls, resource)
    try:
        return _authorize(self, iam_request_cls, resource)
    except tuple(ECR_ERRORS) as e:
        raise JsonRESTError(ECR_ERRORS[type(e)], getattr(e, "message", str(e))) from e


ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize

_check_action_permitted = access_control.IAMRequestBase.check_action_permitted


def check_action_permitted(self, resource):
    if self._action == "sts:AssumeRole" and self._is_assuming_role_operation(resource):
        denied = any(
            access_control.IAMPolicy(p).is_action_permitted(self._action, resource) == access_control.PermissionResult.DENIED
            for p in self._access_key.collect_policies()
        )
        if not denied and self._check_role_trust_relationship(resource):
            return
    return _check_action_permitted(self, resource)


access_control.IAMRequestBase.check_action_permitted = check_action_permitted

# Strict from the first call: no unauthenticated grace.
settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
