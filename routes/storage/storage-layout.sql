-- 'partitioned' where metrics is the partitioned table schema.sql makes, 'reference' where it is the reference
-- schema's plain table (a database made before, not migrated yet): it decides which statement stores batches.
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('metrics'))
            THEN 'partitioned' ELSE 'reference' END
