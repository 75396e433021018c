import datetime

from crm.v1 import common_pb2 as _common_pb2
from crm.v1 import segmentation_pb2 as _segmentation_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InventoryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVENTORY_STATUS_UNSPECIFIED: _ClassVar[InventoryStatus]
    INVENTORY_STATUS_STOCKOUT_RISK: _ClassVar[InventoryStatus]
    INVENTORY_STATUS_HEALTHY: _ClassVar[InventoryStatus]
    INVENTORY_STATUS_OVERSTOCK: _ClassVar[InventoryStatus]
    INVENTORY_STATUS_DEAD_STOCK: _ClassVar[InventoryStatus]

class CampaignObjective(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_OBJECTIVE_UNSPECIFIED: _ClassVar[CampaignObjective]
    CAMPAIGN_OBJECTIVE_CLEAR_OVERSTOCK: _ClassVar[CampaignObjective]
    CAMPAIGN_OBJECTIVE_MOVE_DEAD_STOCK: _ClassVar[CampaignObjective]
    CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT: _ClassVar[CampaignObjective]
    CAMPAIGN_OBJECTIVE_WIN_BACK: _ClassVar[CampaignObjective]
    CAMPAIGN_OBJECTIVE_RETAIN_HIGH_VALUE: _ClassVar[CampaignObjective]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_WHATSAPP: _ClassVar[Channel]
INVENTORY_STATUS_UNSPECIFIED: InventoryStatus
INVENTORY_STATUS_STOCKOUT_RISK: InventoryStatus
INVENTORY_STATUS_HEALTHY: InventoryStatus
INVENTORY_STATUS_OVERSTOCK: InventoryStatus
INVENTORY_STATUS_DEAD_STOCK: InventoryStatus
CAMPAIGN_OBJECTIVE_UNSPECIFIED: CampaignObjective
CAMPAIGN_OBJECTIVE_CLEAR_OVERSTOCK: CampaignObjective
CAMPAIGN_OBJECTIVE_MOVE_DEAD_STOCK: CampaignObjective
CAMPAIGN_OBJECTIVE_PROTECT_STOCKOUT: CampaignObjective
CAMPAIGN_OBJECTIVE_WIN_BACK: CampaignObjective
CAMPAIGN_OBJECTIVE_RETAIN_HIGH_VALUE: CampaignObjective
CHANNEL_UNSPECIFIED: Channel
CHANNEL_EMAIL: Channel
CHANNEL_SMS: Channel
CHANNEL_WHATSAPP: Channel

class ForecastDemandRequest(_message.Message):
    __slots__ = ("product_ids", "horizon_days")
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    horizon_days: int
    def __init__(self, product_ids: _Optional[_Iterable[str]] = ..., horizon_days: _Optional[int] = ...) -> None: ...

class ProductForecast(_message.Message):
    __slots__ = ("product_id", "daily_units", "total_units", "error")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DAILY_UNITS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNITS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    daily_units: _containers.RepeatedScalarFieldContainer[float]
    total_units: float
    error: _common_pb2.RowError
    def __init__(self, product_id: _Optional[str] = ..., daily_units: _Optional[_Iterable[float]] = ..., total_units: _Optional[float] = ..., error: _Optional[_Union[_common_pb2.RowError, _Mapping]] = ...) -> None: ...

class ForecastDemandResponse(_message.Message):
    __slots__ = ("model", "start_date", "forecasts")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    FORECASTS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    start_date: _timestamp_pb2.Timestamp
    forecasts: _containers.RepeatedCompositeFieldContainer[ProductForecast]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., start_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forecasts: _Optional[_Iterable[_Union[ProductForecast, _Mapping]]] = ...) -> None: ...

class InventoryItem(_message.Message):
    __slots__ = ("product_id", "stock_on_hand", "unit_cost", "unit_price", "units_on_order", "lead_time_days", "category")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    STOCK_ON_HAND_FIELD_NUMBER: _ClassVar[int]
    UNIT_COST_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    UNITS_ON_ORDER_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_DAYS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    stock_on_hand: float
    unit_cost: float
    unit_price: float
    units_on_order: float
    lead_time_days: float
    category: str
    def __init__(self, product_id: _Optional[str] = ..., stock_on_hand: _Optional[float] = ..., unit_cost: _Optional[float] = ..., unit_price: _Optional[float] = ..., units_on_order: _Optional[float] = ..., lead_time_days: _Optional[float] = ..., category: _Optional[str] = ...) -> None: ...

class PlanCampaignsRequest(_message.Message):
    __slots__ = ("budget", "horizon_days", "max_discount", "min_margin", "channels", "inventory")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_MARGIN_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    budget: float
    horizon_days: int
    max_discount: float
    min_margin: float
    channels: _containers.RepeatedScalarFieldContainer[Channel]
    inventory: _containers.RepeatedCompositeFieldContainer[InventoryItem]
    def __init__(self, budget: _Optional[float] = ..., horizon_days: _Optional[int] = ..., max_discount: _Optional[float] = ..., min_margin: _Optional[float] = ..., channels: _Optional[_Iterable[_Union[Channel, str]]] = ..., inventory: _Optional[_Iterable[_Union[InventoryItem, _Mapping]]] = ...) -> None: ...

class ProductInventory(_message.Message):
    __slots__ = ("product_id", "category", "status", "days_of_cover", "forecast_daily_units")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DAYS_OF_COVER_FIELD_NUMBER: _ClassVar[int]
    FORECAST_DAILY_UNITS_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    category: str
    status: InventoryStatus
    days_of_cover: float
    forecast_daily_units: float
    def __init__(self, product_id: _Optional[str] = ..., category: _Optional[str] = ..., status: _Optional[_Union[InventoryStatus, str]] = ..., days_of_cover: _Optional[float] = ..., forecast_daily_units: _Optional[float] = ...) -> None: ...

class CampaignAction(_message.Message):
    __slots__ = ("rank", "objective", "product_id", "category", "target_segment", "target_segment_name", "audience_size", "channel", "discount", "expected_extra_units", "expected_revenue", "expected_margin", "budget_used", "rationale", "advisory")
    RANK_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TARGET_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_SEGMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_EXTRA_UNITS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVENUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_MARGIN_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USED_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    ADVISORY_FIELD_NUMBER: _ClassVar[int]
    rank: int
    objective: CampaignObjective
    product_id: str
    category: str
    target_segment: _segmentation_pb2.Segment
    target_segment_name: str
    audience_size: int
    channel: Channel
    discount: float
    expected_extra_units: float
    expected_revenue: float
    expected_margin: float
    budget_used: float
    rationale: str
    advisory: bool
    def __init__(self, rank: _Optional[int] = ..., objective: _Optional[_Union[CampaignObjective, str]] = ..., product_id: _Optional[str] = ..., category: _Optional[str] = ..., target_segment: _Optional[_Union[_segmentation_pb2.Segment, str]] = ..., target_segment_name: _Optional[str] = ..., audience_size: _Optional[int] = ..., channel: _Optional[_Union[Channel, str]] = ..., discount: _Optional[float] = ..., expected_extra_units: _Optional[float] = ..., expected_revenue: _Optional[float] = ..., expected_margin: _Optional[float] = ..., budget_used: _Optional[float] = ..., rationale: _Optional[str] = ..., advisory: _Optional[bool] = ...) -> None: ...

class UpliftAssumptions(_message.Message):
    __slots__ = ("price_elasticity_by_category", "response_rate_by_segment", "contact_cost_by_channel", "stockout_cover_days", "overstock_cover_days", "dead_stock_daily_units")
    class PriceElasticityByCategoryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ResponseRateBySegmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ContactCostByChannelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PRICE_ELASTICITY_BY_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_RATE_BY_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTACT_COST_BY_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STOCKOUT_COVER_DAYS_FIELD_NUMBER: _ClassVar[int]
    OVERSTOCK_COVER_DAYS_FIELD_NUMBER: _ClassVar[int]
    DEAD_STOCK_DAILY_UNITS_FIELD_NUMBER: _ClassVar[int]
    price_elasticity_by_category: _containers.ScalarMap[str, float]
    response_rate_by_segment: _containers.ScalarMap[str, float]
    contact_cost_by_channel: _containers.ScalarMap[str, float]
    stockout_cover_days: float
    overstock_cover_days: float
    dead_stock_daily_units: float
    def __init__(self, price_elasticity_by_category: _Optional[_Mapping[str, float]] = ..., response_rate_by_segment: _Optional[_Mapping[str, float]] = ..., contact_cost_by_channel: _Optional[_Mapping[str, float]] = ..., stockout_cover_days: _Optional[float] = ..., overstock_cover_days: _Optional[float] = ..., dead_stock_daily_units: _Optional[float] = ...) -> None: ...

class PlanCampaignsResponse(_message.Message):
    __slots__ = ("actions", "budget", "budget_used", "expected_margin", "currency", "algorithm", "assumptions", "inventory", "models")
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_MARGIN_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    ASSUMPTIONS_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[CampaignAction]
    budget: float
    budget_used: float
    expected_margin: float
    currency: str
    algorithm: str
    assumptions: UpliftAssumptions
    inventory: _containers.RepeatedCompositeFieldContainer[ProductInventory]
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelRef]
    def __init__(self, actions: _Optional[_Iterable[_Union[CampaignAction, _Mapping]]] = ..., budget: _Optional[float] = ..., budget_used: _Optional[float] = ..., expected_margin: _Optional[float] = ..., currency: _Optional[str] = ..., algorithm: _Optional[str] = ..., assumptions: _Optional[_Union[UpliftAssumptions, _Mapping]] = ..., inventory: _Optional[_Iterable[_Union[ProductInventory, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[_common_pb2.ModelRef, _Mapping]]] = ...) -> None: ...

class DraftMessagesRequest(_message.Message):
    __slots__ = ("action", "channels", "personalization")
    class PersonalizationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PERSONALIZATION_FIELD_NUMBER: _ClassVar[int]
    action: CampaignAction
    channels: _containers.RepeatedScalarFieldContainer[Channel]
    personalization: _containers.ScalarMap[str, str]
    def __init__(self, action: _Optional[_Union[CampaignAction, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[Channel, str]]] = ..., personalization: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MessageDraft(_message.Message):
    __slots__ = ("channel", "subject", "body")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    subject: str
    body: str
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class DraftMessagesResponse(_message.Message):
    __slots__ = ("drafts", "writer")
    DRAFTS_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    drafts: _containers.RepeatedCompositeFieldContainer[MessageDraft]
    writer: str
    def __init__(self, drafts: _Optional[_Iterable[_Union[MessageDraft, _Mapping]]] = ..., writer: _Optional[str] = ...) -> None: ...

class SaveCampaignRequest(_message.Message):
    __slots__ = ("name", "plan", "drafts", "notes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DRAFTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    plan: PlanCampaignsResponse
    drafts: _containers.RepeatedCompositeFieldContainer[MessageDraft]
    notes: str
    def __init__(self, name: _Optional[str] = ..., plan: _Optional[_Union[PlanCampaignsResponse, _Mapping]] = ..., drafts: _Optional[_Iterable[_Union[MessageDraft, _Mapping]]] = ..., notes: _Optional[str] = ...) -> None: ...

class SavedCampaign(_message.Message):
    __slots__ = ("id", "name", "created_at", "plan", "drafts", "notes")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DRAFTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    plan: PlanCampaignsResponse
    drafts: _containers.RepeatedCompositeFieldContainer[MessageDraft]
    notes: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., plan: _Optional[_Union[PlanCampaignsResponse, _Mapping]] = ..., drafts: _Optional[_Iterable[_Union[MessageDraft, _Mapping]]] = ..., notes: _Optional[str] = ...) -> None: ...

class SaveCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: SavedCampaign
    def __init__(self, campaign: _Optional[_Union[SavedCampaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[SavedCampaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[SavedCampaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
