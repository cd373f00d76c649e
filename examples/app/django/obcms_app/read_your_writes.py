"""Reads that see the client's own writes, while every other read goes to the replicas.

After a request writes, its later reads go to the primary, and the response
carries the primary's WAL insert position (an LSN, in a signed cookie). A
later request with that cookie checks, on its replica connection, whether the
replica has replayed up to it (`pg_last_wal_replay_lsn()`). If it has, the
request reads from the replica and the cookie is cleared. If not, the request
reads from the primary. A request with no recent write reads from the replicas
as before, at no extra cost.

The check and the reads that follow it run in one transaction. In PgBouncer's
transaction mode that keeps them on one server connection, so on the replica
that was checked, even when the read-only pool spreads over several.

A statement counts as a write unless it starts with one of READ_ONLY, so a
raw INSERT or UPDATE counts as well as the ORM's.
"""
import contextvars
from contextlib import ExitStack

from django.db import connections, transaction

from .db_router import ReplicaRouter

COOKIE = "obcms_wal_lsn"
SALT = "obcms_app.read_your_writes"
# Replicas replay within milliseconds. A cookie still pending after this long means
# replication is broken, which monitoring reports: reads go back to the replicas.
COOKIE_MAX_AGE_SECONDS = 300
READ_ONLY = ("SELECT", "SHOW", "SET", "SAVEPOINT", "RELEASE", "ROLLBACK", "EXPLAIN")


class _RequestState:
    def __init__(self):
        self.wrote = False
        self.replica_behind = False

    def watch_writes(self, execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith(READ_ONLY):
            self.wrote = True
        return execute(sql, params, many, context)


_state = contextvars.ContextVar("obcms_read_your_writes")


class ReadYourWritesRouter(ReplicaRouter):
    """ReplicaRouter, except that reads go to the primary while the replica lacks this client's last write."""

    def db_for_read(self, model, **hints):
        state = _state.get(None)
        if state is not None and (state.wrote or state.replica_behind):
            return "default"
        return super().db_for_read(model, **hints)


class ReadYourWritesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        state = _RequestState()
        token = _state.set(state)
        try:
            pending = request.get_signed_cookie(COOKIE, default=None, salt=SALT, max_age=COOKIE_MAX_AGE_SECONDS)
            with connections["default"].execute_wrapper(state.watch_writes):
                if pending is None:
                    response = self.get_response(request)
                else:
                    with ExitStack() as replica_transaction:
                        # One transaction: the check and the reads on one replica.
                        replica_transaction.enter_context(transaction.atomic(using="replica"))
                        with connections["replica"].cursor() as cursor:
                            # NULL on a server that is not in recovery: not a replica, so read from the primary.
                            cursor.execute("SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [pending])
                            state.replica_behind = not cursor.fetchone()[0]
                        if state.replica_behind:
                            # Reads go to the primary: hold no replica connection meanwhile.
                            replica_transaction.close()
                        response = self.get_response(request)
            if state.wrote:
                with connections["default"].cursor() as cursor:
                    cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
                    lsn = cursor.fetchone()[0]
                response.set_signed_cookie(
                    COOKIE, lsn, salt=SALT, max_age=COOKIE_MAX_AGE_SECONDS, httponly=True, samesite="Lax"
                )
            elif pending is not None and not state.replica_behind:
                response.delete_cookie(COOKIE, samesite="Lax")
            return response
        finally:
            _state.reset(token)
