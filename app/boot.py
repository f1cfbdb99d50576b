"""Per-MAC boot scripts for PXE (iPXE), and the kernel and boot images they load.

These URLs are fetched by firmware before any login is possible, so they are public: a task's
script carries only a fresh one-time boot ticket (app.tickets), bound to the task and the MAC
and valid for BOOT_TICKET_SECONDS. Fetching a script again never touches the tokens a running
client already holds.
"""

from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint, Response, current_app, request, send_from_directory

from app.auth import PUBLIC_ENDPOINTS
from app.computers.rules import normalize_mac
from app.extensions import db
from app.tasks import bootfiles
from app.tasks.service import active_task_for, expire_stale_tasks, find_computer, match_model
from app.tickets import mint_ticket

bp = Blueprint("boot", __name__, url_prefix="/boot")

# Re-exported: the per-MAC pxelinux/GRUB writers live with the other boot rendering.
write_boot_files = bootfiles.write_for_task
remove_boot_files = bootfiles.remove_for_mac


@bp.record_once
def _make_public(_state) -> None:
    """Let firmware fetch boot scripts and files without signing in."""
    PUBLIC_ENDPOINTS.update({"boot.ipxe", "boot.files"})


def _script(text: str) -> Response:
    """Return an iPXE script that no cache keeps (it may carry a boot ticket)."""
    response = Response(text, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/ipxe")
def ipxe():
    """Serve the iPXE script for a MAC: its active task's boot, else the default menu."""
    config = current_app.config
    server_url = config["SERVER_URL"]
    mac = request.args.get("mac", "")
    try:
        computer = find_computer(normalize_mac(mac)) if mac else None
    except ValueError:
        computer = None
    if computer is not None and expire_stale_tasks():
        db.session.commit()  # an expired task must not boot the machine into imaging again
    task = active_task_for(computer) if computer is not None else None
    if task is not None and not task.cancel_requested:
        profile_args = task.profile.kernel_args if task.profile else ""
        try:
            bootfiles.check_kernel_args(profile_args)
        except bootfiles.BootArgsRefused:
            # The words themselves are not echoed: they are what must not reach a script.
            return _script(bootfiles.render_ipxe_refusal(
                f"{bootfiles.task_title(task)} cannot boot: the kernel arguments of its profile "
                "are refused (fix them on the PXE tab of the profile)"))
        ticket = mint_ticket(task, computer.mac, "ipxe", int(config["BOOT_TICKET_SECONDS"]))
        db.session.commit()
        kernel, image = bootfiles.boot_choice(config, task.profile)
        args = bootfiles.task_kernel_args(profile_args, server_url, ticket,
                                          action=bootfiles.task_action(task))
        return _script(bootfiles.render_ipxe_task(
            base_url=server_url, kernel=kernel, boot_image=image, args=args,
            title=bootfiles.task_title(task)))
    profile = match_model(_model_arg()) if task is None else None
    if profile is not None:
        return _script(_model_match_script(config, profile))
    kernel, image = bootfiles.boot_choice(config, None)
    args = " ".join(part for part in (config.get("BOOT_DEFAULT_ARGS", ""),
                                      f"castor_server={server_url} castor_mode=ondemand") if part)
    return _script(bootfiles.render_ipxe_menu(base_url=server_url, kernel=kernel,
                                              boot_image=image, args=args))


def _model_arg() -> str:
    """Return the SMBIOS product name iPXE sent.

    `${product:uristring}` escapes spaces as %20 but sends '+' as is, which a form decoder
    would turn into a space ("i440FX + PIIX"): the query is decoded without that rule.
    """
    for pair in request.query_string.decode("latin-1").split("&"):
        key, _, value = pair.partition("=")
        if key == "model":
            return unquote(value, errors="replace")[:128]
    return ""


def _model_match_script(config, profile) -> str:
    """The menu of a machine without a task whose model matches a profile: deploy it.

    Nothing is created here (a GET from firmware is anonymous): the environment checks in
    with its own DMI model, and the server creates the deploy task then.
    """
    server_url = config["SERVER_URL"]
    kernel, image = bootfiles.boot_choice(config, profile)
    try:
        args = bootfiles.model_match_kernel_args(profile.kernel_args, server_url,
                                                 action=profile.task_completed_action)
    except bootfiles.BootArgsRefused:
        return bootfiles.render_ipxe_refusal(
            f"model match of profile {profile.name} cannot boot: the kernel arguments of the "
            "profile are refused")
    return bootfiles.render_ipxe_model_match(
        base_url=server_url, kernel=kernel, boot_image=image, args=args,
        title=f"deploy {profile.image.name} ({profile.name}, model match)")


@bp.get("/files/<path:name>")
def files(name: str):
    """Serve a kernel or boot image from BOOT_FILES_PATH."""
    return send_from_directory(current_app.config["BOOT_FILES_PATH"], name)
