"""KPI definitions: one pure function per KPI, grouped by family, and the registry `KPIS`.

Each family module (`rates`, `calibration`, `overrides`, `agreement`,
`latency`, `cost`) takes small aggregate dataclasses (counts, sums, bins,
value arrays) and returns a number or None when the denominator is empty.
Nothing here touches a database; `collectors.engine` gathers the aggregates.
"""

from collectors.kpis.spec import FAMILIES, KPI_IDS, KPIS, KpiSpec, kpi_spec

__all__ = ["FAMILIES", "KPIS", "KPI_IDS", "KpiSpec", "kpi_spec"]
