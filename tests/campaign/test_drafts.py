"""Message drafts: every objective and channel, personalisation, channel limits, pluggability."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.campaign.drafts import (
    Draft,
    MessageWriter,
    NotDraftable,
    TemplateWriter,
    cut_to_sms,
    draft_messages,
    fits_sms,
    sms_units,
)
from server.campaign.types import ALL_CHANNELS, Action, Channel, Objective, Segment

WRITER = TemplateWriter()
DRAFTABLE = [o for o in Objective if o not in (Objective.UNSPECIFIED, Objective.PROTECT_STOCKOUT)]


def action(objective: Objective, discount: float = 0.15, **kw: object) -> Action:
    base = dict(
        rank=1, objective=objective, product_id="20037", category="home",
        segment=Segment.LOYAL, segment_name="Loyal", audience_size=300,
        channel=Channel.EMAIL, discount=discount, expected_extra_units=45.0,
        expected_revenue=405.0, expected_margin=224.4, budget_used=45.6, rationale="",
    )  # fmt: skip
    return Action(**{**base, **kw})  # type: ignore[arg-type]


FIELDS = {
    "first_name": "Ana",
    "store_name": "Acme Home",
    "offer_code": "HOME15",
    "link": "https://acme.example/h",
}


@pytest.mark.parametrize("objective", DRAFTABLE)
@pytest.mark.parametrize("discount", [0.0, 0.15])
def test_every_objective_drafts_every_channel(objective: Objective, discount: float) -> None:
    drafts = draft_messages(WRITER, action(objective, discount), ALL_CHANNELS, FIELDS)
    assert [d.channel for d in drafts] == list(ALL_CHANNELS)
    email, sms, chat = drafts
    assert email.subject.startswith("Ana, ") and email.body.startswith("Hi Ana,")
    assert "Acme Home" in email.body and "https://acme.example/h" in email.body
    assert "Unsubscribe" in email.body
    assert sms.subject == "" and chat.subject == ""
    assert fits_sms(sms.body) and len(sms.body) <= 160
    assert sms.body.endswith("Reply STOP to opt out")
    assert "Ana" in chat.body and "HOME15" in chat.body
    for d in drafts:
        assert ("15% off" in d.subject + d.body) == (discount > 0)
        assert "0% off" not in d.subject + d.body
        assert "{" not in d.subject + d.body  # no template field left unfilled


def test_drafts_are_deterministic_and_name_the_product() -> None:
    a = action(Objective.CLEAR_OVERSTOCK)
    assert draft_messages(WRITER, a, ALL_CHANNELS, FIELDS) == draft_messages(
        WRITER, a, ALL_CHANNELS, FIELDS
    )
    (email,) = draft_messages(WRITER, a, [Channel.EMAIL], {})
    assert email.subject == "15% off home item 20037 this week"
    assert email.body.startswith("Hi,\n\n")
    (email,) = draft_messages(WRITER, a, [Channel.EMAIL], {"product_name": "Rustic Mug"})
    assert "Rustic Mug" in email.subject


long_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80
)


@given(
    st.sampled_from(DRAFTABLE),
    st.sampled_from([0.0, 0.05, 0.333, 0.5]),
    st.fixed_dictionaries(
        {},
        optional={
            "first_name": long_text,
            "store_name": long_text,
            "product_name": long_text,
            "offer_code": st.text(min_size=1, max_size=20),
            "link": st.just("https://example.com/" + "x" * 150),
            "valid_until": long_text,
        },
    ),
)
def test_sms_always_fits_one_segment(objective: Objective, discount: float, fields: dict) -> None:
    (sms,) = draft_messages(WRITER, action(objective, discount), [Channel.SMS], fields)
    used, limit = sms_units(sms.body)
    assert used <= limit <= 160
    assert len(sms.body) <= 160


def test_sms_drops_optional_parts_before_cutting() -> None:
    fields = {**FIELDS, "link": "https://acme.example/" + "x" * 120}
    (sms,) = draft_messages(WRITER, action(Objective.WIN_BACK), [Channel.SMS], fields)
    assert "https://" not in sms.body  # the link went first
    assert "HOME15" in sms.body and "Acme Home" in sms.body
    assert not sms.body.endswith("...")


def test_sms_length_counts_like_the_network() -> None:
    assert sms_units("a" * 160) == (160, 160)
    assert sms_units("€" * 80) == (160, 160)  # escaped GSM-7: two each
    assert sms_units("Zoë 😀") == (6, 70)  # outside GSM-7: UCS-2, the emoji is two units
    assert fits_sms(cut_to_sms("😀" * 100))
    assert cut_to_sms("short") == "short"


def test_advisory_actions_get_no_message() -> None:
    with pytest.raises(NotDraftable, match="advisory"):
        draft_messages(WRITER, action(Objective.PROTECT_STOCKOUT), [Channel.EMAIL], {})


class ShoutingWriter:
    """A different writer plugged in through the protocol (it ignores the SMS limit)."""

    name = "shouting-v0"
    fields = frozenset({"first_name"})

    def write(self, action: Action, channel: Channel, fields: Mapping[str, str]) -> Draft:
        return Draft(channel, "BUY NOW", f"{action.product_id} " + "BUY NOW! " * 40)


def test_any_writer_plugs_in_and_limits_still_hold() -> None:
    writer: MessageWriter = ShoutingWriter()
    email, sms, chat = draft_messages(writer, action(Objective.WIN_BACK), ALL_CHANNELS, {})
    assert email.subject == "BUY NOW" and email.body.startswith("20037 BUY NOW!")
    assert chat.subject == ""  # subjects are email-only whatever the writer returns
    assert len(sms.body) <= 160 and sms.body.endswith("...")
