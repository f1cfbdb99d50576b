"""The schema processing job: validate an uploaded schema, store minimum client sizes."""

from __future__ import annotations

import json

from app.extensions import db
from app.imaging.minsize import disk_minimums
from app.imaging.schema import SchemaError, parse_schema
from app.models import Image, record_history
from app.models.jobs import Job
from jobs.runner import JobFailure, tracked


def profile_selection(profile) -> dict | None:
    """Return a profile's modified deploy schema when switched on and readable, else None."""
    if not (profile.modify_image_schema and profile.deploy_schema):
        return None
    try:
        data = json.loads(profile.deploy_schema)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def minimums_json(schema: dict, selection: dict | None) -> str:
    """Return `{"disks": [{"index": i, "minimum_bytes": N|null}]}` as stored on a profile."""
    sizes = disk_minimums(schema, selection)
    return json.dumps({"disks": [{"index": disk["index"], "minimum_bytes": size}
                                 for disk, size in zip(schema["disks"], sizes, strict=True)]})


@tracked
def process_schema(job: Job, image_id: int) -> dict:
    """Validate the image's schema, store per-profile minimums and the size on client."""
    image = db.session.get(Image, image_id)
    if image is None:
        raise JobFailure(f"image {image_id} no longer exists")
    try:
        if not image.schema_json:
            raise SchemaError("the image has no schema")
        schema = parse_schema(image.schema_json)
    except SchemaError as exc:
        image.schema_status, image.schema_error = "invalid", str(exc)
        record_history("image", image.id, "schema", {"status": "invalid", "error": str(exc)},
                       username="system")
        db.session.commit()
        raise JobFailure(f"the schema of image {image.name} is invalid: {exc}") from exc
    job.append_log(f"schema of {image.name} is valid: {len(schema['disks'])} disk(s)")
    for profile in image.profiles:
        profile.minimum_sizes_json = minimums_json(schema, profile_selection(profile))
        job.append_log(f"profile {profile.name}: minimums {profile.minimum_sizes_json}")
    # Size on client: the space a client needs to take every disk as captured (deploy all,
    # no custom sizes): the sum of the per-disk minimums, whatever profile deploys it.
    everything = disk_minimums(schema, None)
    image.size_on_client_bytes = sum(size or 0 for size in everything)
    image.schema_status, image.schema_error = "valid", ""
    summary = {"status": "valid", "disks": len(schema["disks"]),
               "minimum_bytes": everything, "size_on_client_bytes": image.size_on_client_bytes}
    record_history("image", image.id, "schema", summary, username="system")
    db.session.commit()
    return summary
