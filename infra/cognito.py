"""The user pool whose tokens the service accepts: a new one, or an existing one by id."""

from __future__ import annotations

import dataclasses

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.options import ExistingUserPool


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserPoolRef:
    """What the service and the API's JWT authorizer need to know about the pool."""

    pool_id: str
    client_ids: tuple[str, ...]
    region: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"


def user_pool(scope: Construct, existing: ExistingUserPool | None) -> UserPoolRef:
    if existing is not None:
        return UserPoolRef(
            pool_id=existing.pool_id, client_ids=existing.client_ids, region=existing.region
        )
    pool = new_user_pool(scope)
    client = pool.add_client(
        "AppClient",
        # A native app cannot keep a secret, so its client has none (Cognito's own advice).
        generate_secret=False,
        # SRP: the password never leaves the device. Refresh tokens are always allowed.
        auth_flows=cognito.AuthFlow(user_srp=True),
        # The apps sign in with the SDK, not the hosted UI; CDK would otherwise enable OAuth
        # code and implicit grants with a placeholder callback URL.
        disable_o_auth=True,
        prevent_user_existence_errors=True,
        enable_token_revocation=True,
        access_token_validity=Duration.hours(1),
        id_token_validity=Duration.hours(1),
        refresh_token_validity=Duration.days(30),
    )
    return UserPoolRef(
        pool_id=pool.user_pool_id, client_ids=(client.user_pool_client_id,), region=Aws.REGION
    )


def new_user_pool(scope: Construct) -> cognito.UserPool:
    return cognito.UserPool(
        scope,
        "UserPool",
        # Lite covers sign-up, SRP sign-in, MFA and refresh tokens, which is all a native app
        # with its own screens uses; Essentials adds managed login and passwordless.
        feature_plan=cognito.FeaturePlan.LITE,
        self_sign_up_enabled=True,
        sign_in_aliases=cognito.SignInAliases(email=True),
        auto_verify=cognito.AutoVerifiedAttrs(email=True),
        account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
        password_policy=cognito.PasswordPolicy(min_length=12),
        mfa=cognito.Mfa.OPTIONAL,
        mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
        # The users are the history's owners (`sub` is every item's key): losing the pool
        # orphans every conversation, so it outlives the stack and refuses deletion.
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
