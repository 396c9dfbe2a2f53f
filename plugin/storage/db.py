"""The database: engine, sessions, migrations and a readiness probe."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script folder, shipped inside the package."""

# Any constant works as long as every leanguard process uses the same one.
_MIGRATION_LOCK_KEY = 0x6C65616E6775  # "leangu"
_SQLITE_BUSY_TIMEOUT_MS = 5000
_POSTGRES_CONNECT_TIMEOUT_S = 10
_PING_AFTER_IDLE_S = 1.0


def default_database_url(instance_path: str) -> str:
    """Return the embedded database's URL: a SQLite file in the instance folder."""
    return f"sqlite:///{os.path.join(instance_path, 'leanguard.db')}"


class Database:
    """One database, SQLite or PostgreSQL, and the sessions that use it."""

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)
        self.engine: Engine = _create_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit_engine: Engine | None = None
        self._autocommit_lock = threading.Lock()
        self._kept: Connection | None = None
        self._kept_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """The backend's name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits when the block ends and rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def autocommit_session(self) -> Iterator[Session]:
        """Open a session whose statements each commit on their own (a plain session on SQLite).

        For reads and for writes that are one statement, such as a conditional UPDATE: on
        PostgreSQL they skip the BEGIN and COMMIT round trips of :meth:`session`.
        """
        if self.dialect != "postgresql":
            with self.session() as session:
                yield session
            return
        with (
            self.autocommit() as connection,
            Session(connection, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """Lend a connection whose statements are committed by the time the block ends.

        On PostgreSQL each statement commits on its own: a single INSERT costs one round trip,
        with no BEGIN, COMMIT or liveness ping around it. One such connection is kept open
        between blocks, so a steady stream of them skips the pool too; a block that finds it
        in use gets its own from a pool. After a dropped connection (``connection_invalidated``
        on the error) the next block opens a new one. On SQLite, which runs in the process,
        the block is one transaction.
        """
        if self.dialect != "postgresql":
            with self.engine.begin() as connection:
                yield connection
            return
        if not self._kept_lock.acquire(blocking=False):
            with self._autocommit_pool().connect() as connection:
                yield connection
            return
        try:
            if self._kept is None:
                self._kept = self._autocommit_pool().connect()
            try:
                yield self._kept
            except Exception as exc:
                # A database error may leave the connection unusable; anything else the block
                # raised happened between statements, and the connection is as good as before.
                if isinstance(exc, SQLAlchemyError):
                    self._close_kept()
                raise
            except BaseException:
                self._close_kept()
                raise
        finally:
            self._kept_lock.release()

    def _autocommit_pool(self) -> Engine:
        with self._autocommit_lock:
            if self._autocommit_engine is None:
                # No liveness test at all: the writer retries a statement that met a dropped
                # connection once, on a new one.
                self._autocommit_engine = _create_engine(
                    self.url, ping_idle=False, isolation_level="AUTOCOMMIT"
                )
            return self._autocommit_engine

    def _close_kept(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            # A broken one fails to close; the pool discards it either way.
            with contextlib.suppress(SQLAlchemyError):
                kept.close()

    def alembic_config(self, connection: Connection | None = None) -> Config:
        """Build the Alembic configuration for this database, without an ini file."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        # The option is read through configparser, which gives ``%`` a meaning.
        rendered = self.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision."""
        if self.dialect == "sqlite":
            _make_parent_folder(self.url)
        # Several processes may start at once. Each migrates inside one transaction that first
        # takes a lock, so all but one wait and then find the schema current, and a failed
        # migration leaves no half-built schema behind.
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            elif self.dialect == "sqlite":
                # The driver would run each DDL statement on its own; an explicit immediate
                # transaction takes the write lock now and makes the DDL transactional.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            command.upgrade(self.alembic_config(connection), "head")

    def ping(self) -> bool:
        """Tell whether the database answers a trivial query."""
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError as exc:
            logger.warning("storage.ping-failed: %s", exc.__class__.__name__)
            return False
        return True

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        with self._kept_lock:
            self._close_kept()
        with self._autocommit_lock:
            if self._autocommit_engine is not None:
                self._autocommit_engine.dispose()


def _create_engine(url: URL, *, ping_idle: bool = True, **options: Any) -> Engine:
    # Errors leave out statement parameters: they hold webhook bodies and tenants' secrets,
    # and an error's text ends up in logs and in the deliveries' last_error.
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        # Without a timeout a readiness probe hangs while the server is unreachable.
        connect_args["connect_timeout"] = _POSTGRES_CONNECT_TIMEOUT_S
    engine = create_engine(url, connect_args=connect_args, hide_parameters=True, **options)
    if ping_idle:
        _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Test a pooled connection that sat idle before it is lent, replacing it if it is dead.

    This is ``pool_pre_ping`` for connections idle longer than ``_PING_AFTER_IDLE_S`` only:
    a restart takes longer than that, so connections from before it are tested before a request
    uses them, but a busy worker, whose jobs open several sessions each, no longer pays a round
    trip per session.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _lent(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards the connection and lends a new one.
            raise DisconnectionError("the pooled connection is dead") from exc


def _create_sqlite_engine(url: URL) -> Engine:
    in_memory = _is_memory(url)
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False},
        "hide_parameters": True,
    }
    if in_memory:
        # Every connection to ``:memory:`` is a new, empty database; share one instead.
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)

    def configure(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # Wait for a writer instead of failing at once; set first so the journal switch
            # below also waits.
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                # Readers and the single writer no longer block each other.
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    event.listen(engine, "connect", configure)
    return engine


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _make_parent_folder(url: URL) -> None:
    if not _is_memory(url) and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


@contextmanager
def temporary_schema(server_url: str, *, prefix: str = "leanguard_tmp") -> Iterator[str]:
    """Create an empty PostgreSQL schema; yield a URL whose connections use it; drop it after.

    Tests and benchmarks use it to share one PostgreSQL server without seeing each other.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
