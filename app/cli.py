"""The `castor` command: run the server, the worker, migrations, users and tokens."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from redis import Redis
from redis.exceptions import RedisError

from app import create_app
from app.bootenv.cli import boot_group
from app.extensions import db


def _app():
    return create_app()


@click.group()
def main() -> None:
    """Castor OS imaging server."""


main.add_command(boot_group)


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    from flask_migrate import upgrade

    app = _app()
    with app.app_context():
        upgrade()
    click.echo("database is up to date")


@main.group("users")
def users_group() -> None:
    """User accounts."""


@users_group.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, admin: bool, password_stdin: bool) -> None:
    """Create a user; prints a generated password unless one is given on stdin."""
    from app.models import User

    app = _app()
    with app.app_context():
        if db.session.scalar(db.select(User).filter_by(username=username)):
            raise click.ClickException(f"user {username!r} already exists")
        password = (sys.stdin.readline().rstrip("\n") if password_stdin
                    else secrets.token_urlsafe(12))
        if len(password) < 8:
            raise click.ClickException("the password must have at least 8 characters")
        user = User(username=username, is_admin=admin)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
    click.echo(f"created user {username}" + ("" if password_stdin else f", password: {password}"))


@main.group("tokens")
def tokens_group() -> None:
    """API tokens."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--user", "username", default="admin", show_default=True)
def tokens_create(name: str, username: str) -> None:
    """Create an API token and print it once."""
    from app.models import ApiToken, User

    app = _app()
    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(username=username))
        if user is None:
            raise click.ClickException(f"no user named {username!r}")
        row, clear = ApiToken.issue(user, name)
        db.session.add(row)
        db.session.commit()
    click.echo(clear)


def ensure_admin(app) -> str | None:
    """Create the `admin` account when no user exists; return its new password."""
    from app.models import User

    with app.app_context():
        if db.session.scalar(db.select(db.func.count(User.id))):
            return None
        password = secrets.token_urlsafe(12)
        user = User(username="admin", is_admin=True)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return password


def _redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except RedisError:
        return False


def ensure_redis(app) -> subprocess.Popen | None:
    """Make sure Redis answers; start a private redis-server on a unix socket if not."""
    url = app.config["REDIS_URL"]
    if _redis_answers(url):
        return None
    folder = Path(app.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(folder), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    private_url = f"unix://{sock}?db=0"
    for _ in range(50):
        if _redis_answers(private_url):
            break
        time.sleep(0.1)
    else:
        proc.terminate()
        raise click.ClickException(f"Redis does not answer at {url} and redis-server did not start")
    os.environ["REDIS_URL"] = private_url
    app.config["REDIS_URL"] = private_url
    click.echo(f"Redis at {url} does not answer: started a private redis-server on {sock}")
    return proc


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run the background worker."""
    from jobs.worker import run_worker

    run_worker(_app(), burst=burst)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int)
@click.option("--threads", default=8, show_default=True)
def run(host: str, port: int, threads: int) -> None:
    """Serve the web app with a worker beside it; Ctrl-C stops both."""
    from app.server import serve

    def _stop(signum, frame):
        raise KeyboardInterrupt

    # A service manager stops us with SIGTERM: clean up the worker and Redis as for Ctrl-C.
    signal.signal(signal.SIGTERM, _stop)
    app = _app()
    redis_proc = ensure_redis(app)
    password = ensure_admin(app)
    if password:
        click.echo(f"created the admin account: user 'admin', password '{password}' "
                   "(shown once; change it under Admin)")
    worker_proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=os.environ)
    click.echo(f"Castor on http://{host}:{port}/ (Ctrl-C stops)")
    try:
        serve(app, host=host, port=port, threads=threads)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for proc in (worker_proc, redis_proc):
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is worker_proc else signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
