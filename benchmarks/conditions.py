"""The conditions a run faces: today's (the default, comparable with older rows) or issue 9's volume."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.plan import FULL, QUICK, QUICK_VOLUME, VOLUME, Shape


@dataclass(frozen=True)
class Conditions:
    """What the simulated account looks like, beyond the invocations' plan.

    :param other_tenants_rate: ``FilterLogEvents`` calls per second other tenants of the account make,
        counted by the quota enforcer against the same 5 per second.
    :param cloudwatch_pages: moto sorts and pages ``FilterLogEvents`` as CloudWatch (1 MB pages; see
        `benchmarks.moto_patch`); today's runs page as the rows measured before it.
    :param operator_kwargs: build each trigger with the kwargs `LambdaInvokeDeferrableOperator` passes with
        its defaults (``botocore_config=None``, ``max_lines=500``, its deadline, ``fire_after``), as users
        leave them; otherwise the harness's own (one attempt per call, nothing cut from events).
    """

    name: str
    shape: Shape
    quick_shape: Shape
    other_tenants_rate: float
    cloudwatch_pages: bool
    operator_kwargs: bool

    def shape_for(self, quick: bool) -> Shape:
        return self.quick_shape if quick else self.shape


CONDITIONS: dict[str, Conditions] = {
    conditions.name: conditions
    for conditions in (
        Conditions("today", FULL, QUICK, other_tenants_rate=0.0, cloudwatch_pages=False, operator_kwargs=False),
        Conditions("volume", VOLUME, QUICK_VOLUME, other_tenants_rate=1.5, cloudwatch_pages=True, operator_kwargs=True),
    )
}
