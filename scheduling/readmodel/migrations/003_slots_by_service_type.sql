-- SearchAvailableSlots by service type (CONTRACT section 9: `GET /slots` gains `serviceType`): the slot's
-- denormalized service type as a column of its own, kept by PostgreSQL from the stored document.
ALTER TABLE slots ADD COLUMN service_type text GENERATED ALWAYS AS (data->>'serviceType') STORED;
CREATE INDEX slots_free_by_service_type ON slots (tenant_id, service_type, start_at, id) WHERE status = 'free';
