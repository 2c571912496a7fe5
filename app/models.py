"""Import every model so that the metadata (and Alembic) sees them all."""

from app.api.models import ApiIdempotency, ApiKey, ApiUsageDaily  # noqa: F401
from app.audit.models import AuditCheckpoint, AuditEvent, AuditLabelWord, AuditRedaction, AuditSeal  # noqa: F401
from app.audit.rollups import AnalyticsDaily, AnalyticsWatermark  # noqa: F401
from app.auth.models import AuthHandoff, PasswordReset, RecoveryCode, TotpFactor, User, UserSession  # noqa: F401
from app.concurrency import SubmitKey  # noqa: F401
from app.domains.models import Domain  # noqa: F401
from app.members.models import Invitation  # noqa: F401
from app.orgdata.models import OrgExport  # noqa: F401
from app.privacy.models import AccountDeletion, PersonalExport  # noqa: F401
from app.projects.models import Project  # noqa: F401
from app.rbac.group_roles import GroupRoleMapping  # noqa: F401
from app.rbac.models import Role  # noqa: F401
from app.reviews.models import AccessReview, AccessReviewer, AccessReviewItem  # noqa: F401
from app.scim.models import ScimGroup, ScimGroupMember, ScimToken, ScimUser  # noqa: F401
from app.settings.models import OrganizationLogo  # noqa: F401
from app.sso.models import SsoConnection, SsoIdentity, SsoSetupLink  # noqa: F401
from app.sso.saml_models import SamlAssertionSeen, SamlRequest  # noqa: F401
from app.streaming.models import AuditStream  # noqa: F401
from app.tenancy.models import Membership, Organization, Plan, RetiredSlug  # noqa: F401
from app.tenancy.notify import NotificationPreference  # noqa: F401
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: F401
