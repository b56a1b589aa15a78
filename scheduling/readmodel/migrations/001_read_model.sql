-- Read model kept by the projector from decision records, and the append-only audit log.
CREATE TABLE schedules (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    actor_reference text NOT NULL,
    location_id text NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX schedules_by_actor ON schedules (tenant_id, actor_reference, id);

CREATE TABLE slots (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    schedule_id text NOT NULL,
    provider_id text,
    location_id text,
    status text NOT NULL,
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL
);
-- SearchAvailableSlots: free slots of a tenant by provider and/or location, ordered by start
CREATE INDEX slots_free_by_provider ON slots (tenant_id, provider_id, start_at, id) WHERE status = 'free';
CREATE INDEX slots_free_by_location ON slots (tenant_id, location_id, start_at, id) WHERE status = 'free';
CREATE INDEX slots_by_schedule ON slots (schedule_id, start_at, id);

CREATE TABLE appointments (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    patient_id text NOT NULL,
    provider_id text,
    location_id text,
    status text NOT NULL,
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX appointments_by_patient ON appointments (tenant_id, patient_id, start_at, id);
-- GetCalendarView: appointments by provider or facility with start in [from, to)
CREATE INDEX appointments_by_provider ON appointments (tenant_id, provider_id, start_at, id);
CREATE INDEX appointments_by_location ON appointments (tenant_id, location_id, start_at, id);

CREATE TABLE waitlist_entries (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    patient_id text NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL,
    created_at timestamptz NOT NULL,
    version integer NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX waitlist_by_status ON waitlist_entries (tenant_id, status, priority DESC, created_at, id);

CREATE TABLE patients (
    tenant_id text NOT NULL,
    patient_id text NOT NULL,
    updated_at timestamptz NOT NULL,
    data jsonb NOT NULL,
    PRIMARY KEY (tenant_id, patient_id)
);

CREATE TABLE audit_log (
    seq bigserial PRIMARY KEY,
    delivery_id text NOT NULL UNIQUE,
    command_id text NOT NULL,
    tenant_id text NOT NULL,
    caller text,
    command_type text NOT NULL,
    outcome text NOT NULL,
    replay_of text,
    decided_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_by_tenant ON audit_log (tenant_id, decided_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
