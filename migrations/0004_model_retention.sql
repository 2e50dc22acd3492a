-- Retention of fitted models: a version's record (what it saw, how it scored, its
-- promotions) is kept forever, but its serialised model may be deleted once it is old
-- enough that nobody will serve it again. A daily retrain stores about 200 KB per sensor
-- and day that would otherwise grow without end.

ALTER TABLE model_versions ALTER COLUMN model DROP NOT NULL;
ALTER TABLE model_versions ADD COLUMN model_pruned_at timestamptz;
-- The model is gone exactly when the prune that deleted it is recorded, and a champion
-- always has its model: serving never finds a champion it cannot load.
ALTER TABLE model_versions ADD CONSTRAINT model_versions_pruned_has_no_model
    CHECK ((model IS NULL) = (model_pruned_at IS NOT NULL));
ALTER TABLE model_versions ADD CONSTRAINT model_versions_champion_has_model
    CHECK (status <> 'champion' OR model IS NOT NULL);
