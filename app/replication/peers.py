"""What a signed peer may do here: replay protection that survives restarts, and rights.

A peer's signature proves who sent a request, not that it may touch every image: it may
change or delete only images it replicated to this server itself, never one uploaded or
created here. A protected image is not deleted nor overwritten, by a peer no more than here;
like here, it may be renamed. Nonces are kept in the database until their timestamp
can no longer be fresh, so a captured request stays refused after a restart of Redis or
of Castor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from app.errors import Refused
from app.extensions import db
from app.models import Image, ReplicationNonce
from app.models.base import utcnow
from app.replication.signing import MAX_SKEW_SECONDS

# A timestamp is fresh for MAX_SKEW_SECONDS either way: keep its nonce a little longer.
NONCE_LIFETIME = timedelta(seconds=2 * MAX_SKEW_SECONDS + 60)


class PeerRefused(Refused):
    """A signed peer asked for something it has no right to (answered 403)."""

    status = 403


def remember_nonce(sender: str, nonce: str, now: datetime | None = None) -> bool:
    """Record a request's nonce; tell whether it is new (False: a replay). Prunes old ones."""
    now = now or utcnow()
    db.session.execute(db.delete(ReplicationNonce).where(ReplicationNonce.expires_at < now))
    db.session.add(ReplicationNonce(sender=sender, nonce=nonce,
                                    expires_at=now + NONCE_LIFETIME))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def check_peer_may_change(name: str, sender: str, renaming: bool = False) -> None:
    """Refuse (403) a peer's change of an image it did not replicate here, or a protected one.

    An image that does not exist yet is the peer's to create. A rename leaves the files as
    they are, so it is allowed for a protected image, as the image pages allow it.
    """
    image = db.session.scalar(db.select(Image).filter_by(name=name))
    if image is None:
        return
    if image.origin != sender:
        where = f"replicated from {image.origin}" if image.origin else "local to this server"
        raise PeerRefused(f"image {name} is {where}: {sender} may not change it")
    if image.protected and not renaming:
        raise PeerRefused(f"image {name} is protected here: {sender} may not change it")
