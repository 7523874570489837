"""Purchases: the least a soft opt-in needs (rule 11): the contact, the day, the product
category and whether it was paid. Nothing else about the purchase is kept (Art. 5(1)(c))."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from syncd.schema.base import Base


class Purchase(Base):
    """One purchase; the same (day, category, paid) of a contact is kept once."""

    __tablename__ = "purchases"
    __table_args__ = (UniqueConstraint("contact_id", "purchased_on", "category", "paid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"),
                                            index=True)
    purchased_on: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(100))
    # A quote or a free product is recorded unpaid: it makes nobody a customer.
    paid: Mapped[bool] = mapped_column(Boolean)
