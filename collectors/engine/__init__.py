"""The KPI engine: gathers mergeable aggregates from the store (`query`) and assembles reports (`report`)."""
