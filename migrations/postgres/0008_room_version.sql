-- A room's version: every change to the room or to its lectures raises it (by trigger, so no statement can
-- forget). Processes keep rooms in a cache for the join path and check the version in the same statement
-- that admits a guest, so a room changed by another replica is read again instead of trusted.
ALTER TABLE rooms ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION confctl_rooms_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER rooms_version BEFORE UPDATE ON rooms FOR EACH ROW EXECUTE FUNCTION confctl_rooms_version();

CREATE FUNCTION confctl_lectures_room_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rooms SET version = version + 1 WHERE id = NEW.room_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER lectures_room_version AFTER INSERT OR UPDATE ON lectures FOR EACH ROW
    EXECUTE FUNCTION confctl_lectures_room_version();

