-- SearchAvailableSlots and GetCalendarView without a provider or location filter (both filters are optional):
-- a range scan on (tenant_id, start_at, id) reads just the page, in order. Without these the planner
-- skip-scans a location index and sorts every row of the range (docs/queries.md).
CREATE INDEX slots_free_by_start ON slots (tenant_id, start_at, id) WHERE status = 'free';
CREATE INDEX appointments_by_start ON appointments (tenant_id, start_at, id);
