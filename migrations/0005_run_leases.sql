-- Training runs hold a lease: the worker executing a run touches `heartbeat_at` while it
-- fits, so a run whose process died (killed, out of memory, power lost) is recognised
-- within minutes and its sensor trained again, instead of showing "running" for hours.
ALTER TABLE training_runs ADD COLUMN heartbeat_at timestamptz;
UPDATE training_runs SET heartbeat_at = started_at WHERE status = 'running';

-- At most one run per sensor executes at a time: a second fit of the same sensor beside
-- the first (a drift or manual run claimed by another worker) would fit on the same data
-- and could not be promoted over a champion that changed under it. Runs of one sensor
-- that were running side by side before this rule keep the newest; the others are closed
-- as abandoned (a process still fitting one records its result over this when it ends).
UPDATE training_runs r SET status = 'failed', finished_at = now(),
       error = 'abandoned: another run of the same sensor was running beside it'
 WHERE status = 'running'
   AND EXISTS (SELECT 1 FROM training_runs n
                WHERE n.sensor_id = r.sensor_id AND n.status = 'running' AND n.id > r.id);
CREATE UNIQUE INDEX training_runs_one_running ON training_runs (sensor_id) WHERE status = 'running';
