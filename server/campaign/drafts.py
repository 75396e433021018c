"""Message drafts: a small writer interface, the template writer, and the channel limits.

A writer turns one plan action into text for one channel. Anything with `name`, `fields` and
`write` fits (`MessageWriter`), so a different writer (an LLM, a copy team's CMS) can be plugged
in later; `draft_messages` enforces the channel limits whichever writer runs, so an SMS is
always one segment: 160 GSM-7 characters (escaped GSM-7 characters count twice), or 70 when
the text needs UCS-2 (any character outside GSM-7, e.g. an emoji in a name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from server.campaign.types import Action, Channel, Objective

SMS_GSM7_LIMIT = 160
SMS_UCS2_LIMIT = 70
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESCAPED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Draft:
    channel: Channel
    subject: str  # email only
    body: str


class MessageWriter(Protocol):
    """Writes one action's message for one channel; must be deterministic."""

    @property
    def name(self) -> str: ...

    @property
    def fields(self) -> frozenset[str]:
        """Personalisation keys the writer understands."""
        ...

    def write(self, action: Action, channel: Channel, fields: Mapping[str, str]) -> Draft: ...


class NotDraftable(ValueError):
    """The action is not something customers are messaged about."""


def sms_units(text: str) -> tuple[int, int]:
    """(length as the SMS network counts it, the one-segment limit for that encoding)."""
    if all(ch in _GSM7 or ch in _GSM7_ESCAPED for ch in text):
        return sum(2 if ch in _GSM7_ESCAPED else 1 for ch in text), SMS_GSM7_LIMIT
    return len(text.encode("utf-16-le")) // 2, SMS_UCS2_LIMIT


def fits_sms(text: str) -> bool:
    used, limit = sms_units(text)
    return used <= limit


def cut_to_sms(text: str) -> str:
    """The longest prefix (ending in "...") that fits one SMS segment.

    Linear in the text: every character counts at least one unit, so no prefix longer than
    the GSM-7 limit can fit, and the search runs on that many characters whatever came in.
    """
    if fits_sms(text):
        return text
    text = text[:SMS_GSM7_LIMIT]
    while text and not fits_sms(text.rstrip() + "..."):
        text = text[:-1]
    return text.rstrip() + "..."


def draft_messages(
    writer: MessageWriter, action: Action, channels: Sequence[Channel], fields: Mapping[str, str]
) -> list[Draft]:
    """One draft per channel, in the order given, within every channel's limits."""
    drafts = []
    for channel in channels:
        draft = writer.write(action, channel, fields)
        if channel is Channel.SMS:
            draft = Draft(channel, "", cut_to_sms(draft.body))
        elif channel is not Channel.EMAIL:
            draft = Draft(channel, "", draft.body)
        drafts.append(draft)
    return drafts


# -- the template writer ---------------------------------------------------------------------
FIELD_DEFAULTS: dict[str, str] = {
    "first_name": "",  # "Hi Ana," / "Hi,"
    "store_name": "",  # sender and sign-off; omitted when empty
    "product_name": "",  # default: "<category> item <product_id>"
    "offer_code": "",  # "Use code X"; omitted when empty
    "link": "",  # shop link; omitted when empty (and dropped from an SMS first)
    "valid_until": "",  # "Valid until Sunday"; default depends on the objective
}
_OPT_OUT_SMS = "Reply STOP to opt out"
_OPT_OUT_CHAT = "Reply STOP to unsubscribe."
_OPT_OUT_EMAIL = "You get this email because you shop with us. Unsubscribe any time."


@dataclass(frozen=True)
class _Copy:
    subject: str
    headline: str
    lead: str
    validity: str


def _pct(discount: float) -> str:
    value = discount * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 1e-9 else f"{value:.1f}%"


def _copy(action: Action, product: str) -> _Copy:
    off = _pct(action.discount)
    paid = action.discount > 0
    category = action.category or "our"
    match action.objective:
        case Objective.CLEAR_OVERSTOCK:
            if paid:
                return _Copy(
                    f"{off} off {product} this week",
                    f"{off} off {product} this week",
                    f"You love our {category} range, so we picked {product} for you "
                    f"and took {off} off.",
                    "Valid this week",
                )
            return _Copy(
                f"Picked for you: {product}",
                f"Picked for you: {product}",
                f"You love our {category} range, so we think you will like {product}.",
                "",
            )
        case Objective.MOVE_DEAD_STOCK:
            if paid:
                return _Copy(
                    f"Final reductions: {off} off {product}",
                    f"Final reductions: {off} off {product}",
                    f"Last chance: {product} is now {off} off, and when it is gone it is gone.",
                    "While stocks last",
                )
            return _Copy(
                f"Still available: {product}",
                f"Still available: {product}",
                f"{product} is still available, but not for long.",
                "While stocks last",
            )
        case Objective.WIN_BACK:
            if paid:
                return _Copy(
                    f"We miss you: {off} off your next order",
                    f"We miss you: {off} off your next order",
                    f"It has been a while, so here is {off} off your next order with us.",
                    "Valid for 14 days",
                )
            return _Copy(
                "We miss you: see what is new",
                "We miss you: see what is new",
                "It has been a while. Come and see what is new since your last visit.",
                "",
            )
        case Objective.RETAIN_HIGH_VALUE:
            if paid:
                return _Copy(
                    f"A thank-you: {off} off your next order",
                    f"A thank-you from us: {off} off your next order",
                    f"You are one of our best customers. As a thank-you, enjoy {off} off "
                    "your next order.",
                    "Valid for 30 days",
                )
            return _Copy(
                "A thank-you: first look at what is new",
                "A thank-you: first look at what is new",
                "You are one of our best customers, so you get the first look at what is new.",
                "",
            )
    raise NotDraftable(
        f"{action.objective.name} actions are advisory: customers get no message about them"
    )


class TemplateWriter:
    """Fixed templates per objective and channel with personalisation fields ("templates-v1")."""

    name = "templates-v1"
    fields = frozenset(FIELD_DEFAULTS)

    def write(self, action: Action, channel: Channel, fields: Mapping[str, str]) -> Draft:
        f = {**FIELD_DEFAULTS, **{k: v.strip() for k, v in fields.items()}}
        default_product = " ".join(x for x in (action.category, "item", action.product_id) if x)
        product = f["product_name"] or default_product
        copy = _copy(action, product)
        validity = f"Valid until {f['valid_until']}" if f["valid_until"] else copy.validity
        code = f"Use code {f['offer_code']}" if f["offer_code"] else ""
        if channel is Channel.EMAIL:
            return self._email(copy, f, code, validity)
        if channel is Channel.SMS:
            return Draft(
                channel,
                "",
                self._sms(
                    copy,
                    f,
                    code=code,
                    validity=validity,
                    product=product,
                    default_product=default_product,
                ),
            )
        if channel is Channel.WHATSAPP:
            greeting = f"Hi {f['first_name']}! " if f["first_name"] else "Hi! "
            extras = [s for s in (code, validity, f["link"]) if s]
            body = " ".join(
                [
                    greeting + copy.lead,
                    *(s + ("" if s == f["link"] else ".") for s in extras),
                    _OPT_OUT_CHAT,
                ]
            )
            if f["store_name"]:
                body = f"{f['store_name']}: {body}"
            return Draft(channel, "", body)
        raise ValueError(f"no template for channel {channel.name}")

    @staticmethod
    def _email(copy: _Copy, f: Mapping[str, str], code: str, validity: str) -> Draft:
        subject = f"{f['first_name']}, {copy.subject}" if f["first_name"] else copy.subject
        greeting = f"Hi {f['first_name']}," if f["first_name"] else "Hi,"
        details = " ".join(s + "." for s in (code, validity) if s)
        parts = [greeting, copy.lead + (f" {details}" if details else "")]
        if f["link"]:
            parts.append(f"Shop now: {f['link']}")
        parts.append("Thank you,\n" + (f["store_name"] or "The team"))
        parts.append(_OPT_OUT_EMAIL)
        return Draft(Channel.EMAIL, subject, "\n\n".join(parts))

    @staticmethod
    def _sms(
        copy: _Copy,
        f: Mapping[str, str],
        *,
        code: str,
        validity: str,
        product: str,
        default_product: str,
    ) -> str:
        """Longest variant that fits: drop the link, the validity, the sender, then the name."""

        def render(sender: bool, link: bool, valid: bool, headline: str) -> str:
            parts = [headline + "."]
            parts += [s + "." for s in (code, validity if valid else "") if s]
            if link and f["link"]:
                parts.append(f["link"])
            parts.append(_OPT_OUT_SMS)
            text = " ".join(parts)
            return f"{f['store_name']}: {text}" if sender and f["store_name"] else text

        variants = [
            render(True, True, True, copy.headline),
            render(True, False, True, copy.headline),
            render(True, False, False, copy.headline),
            render(False, False, False, copy.headline),
            render(False, False, False, copy.headline.replace(product, default_product)),
        ]
        for text in variants:
            if fits_sms(text):
                return text
        return variants[-1]
