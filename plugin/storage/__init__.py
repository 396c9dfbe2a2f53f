"""Storage: the SQL database behind the inbox, the worker, the reports and the admin pages."""

# Every module that maps a table is imported here, so the metadata Alembic compares against
# is complete whichever module a caller imports first.
from plugin.storage import backfills as backfills
from plugin.storage import reevaluations as reevaluations
from plugin.storage.cards import CARD_POSTING, forget_card, get_card, save_card
from plugin.storage.db import Database, default_database_url
from plugin.storage.deliveries import (
    accept_delivery,
    claim_delivery,
    complete_delivery,
    dead_deliveries,
    delivery_counts,
    due_deliveries,
    fail_delivery,
)
from plugin.storage.evaluations import latest_evaluation, latest_results, record_evaluation
from plugin.storage.models import (
    Base,
    CardRow,
    CardState,
    Delivery,
    DeliveryState,
    EvaluationRow,
    RulesetRow,
    RulesetSource,
    Tenant,
    WorkItemRow,
)
from plugin.storage.rulesets import latest_ruleset, ruleset_history, save_ruleset
from plugin.storage.tenants import get_or_create_tenant
from plugin.storage.work_items import (
    count_sites_with_item,
    find_site_work_item,
    find_work_item,
    mark_work_item_deleted,
    upsert_work_item,
)

__all__ = [
    "CARD_POSTING",
    "Base",
    "CardRow",
    "CardState",
    "Database",
    "Delivery",
    "DeliveryState",
    "EvaluationRow",
    "RulesetRow",
    "RulesetSource",
    "Tenant",
    "WorkItemRow",
    "accept_delivery",
    "claim_delivery",
    "complete_delivery",
    "count_sites_with_item",
    "dead_deliveries",
    "default_database_url",
    "delivery_counts",
    "due_deliveries",
    "fail_delivery",
    "find_site_work_item",
    "find_work_item",
    "forget_card",
    "get_card",
    "get_or_create_tenant",
    "latest_evaluation",
    "latest_results",
    "latest_ruleset",
    "mark_work_item_deleted",
    "record_evaluation",
    "ruleset_history",
    "save_card",
    "save_ruleset",
    "upsert_work_item",
]
