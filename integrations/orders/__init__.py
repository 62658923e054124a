"""The order lifecycle: a WooCommerce order on its way to exactly one Hogia Smart invoice.

One module owns every change of an ``OrderTransfer``'s state (``lifecycle``); the others
(intake of what the shop sent, the transfer attempt, the quota, support's actions, the
sweeper and the poll) ask it for transitions.
"""
