class ReplicaRouter:
    """Reads from the replicas (PgBouncer's read-only pool), writes and migrations on the primary."""

    def db_for_read(self, model, **hints):
        return "replica"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # both aliases are the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
