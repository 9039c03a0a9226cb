-- A room's version: every change to the room or to its lectures raises it (by trigger, so no statement can
-- forget). Processes keep rooms in a cache for the join path and check the version in the same statement
-- that admits a guest, so a room changed by another replica is read again instead of trusted.
ALTER TABLE rooms ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER rooms_version AFTER UPDATE ON rooms FOR EACH ROW WHEN NEW.version = OLD.version
BEGIN
    UPDATE rooms SET version = OLD.version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER lectures_insert_room_version AFTER INSERT ON lectures FOR EACH ROW
BEGIN
    UPDATE rooms SET version = version + 1 WHERE id = NEW.room_id;
END;

CREATE TRIGGER lectures_update_room_version AFTER UPDATE ON lectures FOR EACH ROW
BEGIN
    UPDATE rooms SET version = version + 1 WHERE id = NEW.room_id;
END;

