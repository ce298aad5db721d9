"""Authentication and authorisation for HACS: actors, permissions, JWTs, context.

This is the bottom layer of HACS and imports no other HACS package. Typical use::

    from hacs_auth import Actor, AuthManager, acting_as, require_permission

    actor = Actor(name="db-writer", role="system", permissions=["patient:write"])
    actor.can("read", "Patient")  # True: write implies read

    with acting_as(actor):  # the current actor, for this block only
        ...

    token = AuthManager().create_access_token("dr_martinez", "physician", ["patient:read"])
"""

import logging as _logging

from hacs_auth.actor import PATIENT_FACING_ROLES, Actor, ActorRole
from hacs_auth.context import acting_as, configure_hacs, get_current_actor
from hacs_auth.decorators import require_permission
from hacs_auth.errors import (
    AuthConfigurationError,
    AuthError,
    InactiveActorError,
    InsufficientPermissionError,
    InvalidTokenError,
    MissingTokenError,
    PermissionFormatError,
    RevocationUnavailableError,
    TokenExpiredError,
    TokenRevokedError,
)
from hacs_auth.permissions import (
    Permission,
    PermissionSet,
    compile_permissions,
    normalize_permissions,
    normalize_resource,
    parse_permission,
)
from hacs_auth.revocation import (
    CachedRevocationList,
    RevocationList,
    RevocationSnapshot,
    get_revocation_list,
    set_revocation_list,
)
from hacs_auth.tokens import (
    MAX_LIFETIME_ENV_VAR,
    SECRET_ENV_VAR,
    AuthManager,
    actor_from_claims,
    get_auth_manager,
    set_auth_manager,
)

__all__ = [
    "MAX_LIFETIME_ENV_VAR",
    "PATIENT_FACING_ROLES",
    "SECRET_ENV_VAR",
    "Actor",
    "ActorRole",
    "AuthConfigurationError",
    "AuthError",
    "AuthManager",
    "CachedRevocationList",
    "InactiveActorError",
    "InsufficientPermissionError",
    "InvalidTokenError",
    "MissingTokenError",
    "Permission",
    "PermissionFormatError",
    "PermissionSet",
    "RevocationList",
    "RevocationSnapshot",
    "RevocationUnavailableError",
    "TokenExpiredError",
    "TokenRevokedError",
    "acting_as",
    "actor_from_claims",
    "compile_permissions",
    "configure_hacs",
    "get_auth_manager",
    "get_current_actor",
    "get_revocation_list",
    "normalize_permissions",
    "normalize_resource",
    "parse_permission",
    "require_permission",
    "set_auth_manager",
    "set_revocation_list",
]

# A library leaves logging to the application: without this handler, Python's last-resort
# handler would print this package's WARNING and ERROR records on stderr.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
