"""Boot scripts for PXE clients: iPXE text, per-MAC pxelinux and GRUB files in the TFTP folder.

Rendering is plain string work over plain values, so it is tested without an app; the
write/remove helpers take the app's config mapping (TFTP_PATH, SERVER_URL, BOOT_* names).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from app.computers.rules import normalize_mac
from app.profiles.options import kernel_args_problem

DEFAULT_KERNEL = "vmlinuz"
DEFAULT_BOOT_IMAGE = "initrd.img"


def mac_file_stem(mac: str) -> str:
    """Return the PXE per-MAC file name part: ARP type 01 then the MAC with dashes."""
    return "01-" + normalize_mac(mac).replace(":", "-")


def pxelinux_path(tftp: str | Path, mac: str) -> Path:
    """Return where pxelinux looks for this MAC's config."""
    return Path(tftp) / "pxelinux.cfg" / mac_file_stem(mac)


def grub_path(tftp: str | Path, mac: str) -> Path:
    """Return where GRUB (grub.cfg's per-MAC include) looks for this MAC's config."""
    return Path(tftp) / "grub" / f"grub.cfg-{mac_file_stem(mac)}"


class BootArgsRefused(ValueError):
    """Kernel arguments that would change the generated boot loader script; never rendered."""


def check_kernel_args(profile_args: str) -> None:
    """Refuse profile kernel arguments that would break out of a boot loader entry.

    The profile form refuses them too; this check keeps a stored value (from before that rule,
    or written around it) out of every GRUB, pxelinux and iPXE file Castor generates.
    """
    problem = kernel_args_problem(profile_args)
    if problem:
        raise BootArgsRefused(f"the profile's kernel arguments {profile_args!r} are refused: "
                              f"{problem}")


def task_kernel_args(profile_args: str, server_url: str, ticket: str, extra: str = "",
                     action: str = "") -> str:
    """Return the kernel command line of a task boot: profile args, then Castor's own.

    The boot carries only a one-time boot ticket (app.tickets), never a reusable token, and
    the task completed action (`castor_action`), which the environment runs itself when the
    client never gets to (server unreachable, task ended before check-in).
    """
    check_kernel_args(profile_args)
    parts = [profile_args.strip(), f"castor_server={server_url}", "castor_mode=task",
             f"castor_ticket={ticket}", f"castor_action={action}" if action else "",
             extra.strip()]
    return " ".join(part for part in parts if part)


def model_match_kernel_args(profile_args: str, server_url: str, action: str = "") -> str:
    """Return the kernel command line of a model-match boot: no credential, the action."""
    check_kernel_args(profile_args)
    parts = [profile_args.strip(), f"castor_server={server_url}", "castor_mode=modelmatch",
             f"castor_action={action}" if action else ""]
    return " ".join(part for part in parts if part)


def task_action(task) -> str:
    """Return the task completed action its boot carries (the profile's, else reboot)."""
    return (task.profile.task_completed_action if task.profile else "") or "reboot"


def _safe(word: str) -> str:
    """Refuse characters that would break out of a boot script line."""
    if any(ch in word for ch in "\n\r"):
        raise ValueError("boot script values cannot contain line breaks")
    return word


def render_ipxe_task(*, base_url: str, kernel: str, boot_image: str, args: str,
                     title: str) -> str:
    """Return the iPXE script that boots the imaging environment for one task."""
    files = base_url.rstrip("/") + "/boot/files/"
    return "\n".join([
        "#!ipxe",
        f"echo Castor: {_safe(title)}",
        f"kernel {files}{_safe(kernel)} initrd={_safe(Path(boot_image).name)} {_safe(args)}",
        f"initrd {files}{_safe(boot_image)}",
        "boot || goto failed",
        ":failed",
        "echo Castor: the imaging environment did not boot; booting the local disk",
        "exit",
        "",
    ])


def render_ipxe_refusal(reason: str) -> str:
    """Return an iPXE script that says why the task cannot boot, then boots the local disk."""
    text = "".join(ch if ch.isprintable() and ch not in ";#{}\"'`$&|<>" else "?"
                   for ch in reason)
    return "\n".join(["#!ipxe", f"echo Castor: {text}", "sleep 10", "exit", ""])


def render_ipxe_model_match(*, base_url: str, kernel: str, boot_image: str, args: str,
                            title: str, timeout_ms: int = 10000) -> str:
    """Return the menu of a model-match boot: the deploy is the default, the disk the other."""
    files = base_url.rstrip("/") + "/boot/files/"
    return "\n".join([
        "#!ipxe",
        "menu Castor: model match",
        f"item deploy {_safe(title)}",
        "item local Boot from the local disk",
        f"choose --default deploy --timeout {int(timeout_ms)} target && goto ${{target}}",
        ":local",
        "exit",
        ":deploy",
        f"kernel {files}{_safe(kernel)} initrd={_safe(Path(boot_image).name)} {_safe(args)}",
        f"initrd {files}{_safe(boot_image)}",
        "boot || goto local",
        "",
    ])


def render_ipxe_menu(*, base_url: str, kernel: str, boot_image: str, args: str,
                     timeout_ms: int = 10000) -> str:
    """Return the default iPXE menu: on-demand imaging or the local disk (the default)."""
    files = base_url.rstrip("/") + "/boot/files/"
    return "\n".join([
        "#!ipxe",
        "menu Castor",
        "item local Boot from the local disk",
        "item ondemand On-demand imaging",
        f"choose --default local --timeout {int(timeout_ms)} target && goto ${{target}}",
        ":local",
        "exit",
        ":ondemand",
        f"kernel {files}{_safe(kernel)} initrd={_safe(Path(boot_image).name)} {_safe(args)}",
        f"initrd {files}{_safe(boot_image)}",
        "boot || goto local",
        "",
    ])


def render_pxelinux(*, kernel: str, boot_image: str, args: str, title: str) -> str:
    """Return a pxelinux config that boots the task's kernel straight away."""
    return "\n".join([
        "DEFAULT castor",
        "PROMPT 0",
        "TIMEOUT 0",
        "LABEL castor",
        f"  MENU LABEL {_safe(title)}",
        f"  KERNEL {_safe(kernel)}",
        f"  INITRD {_safe(boot_image)}",
        f"  APPEND {_safe(args)}",
        "",
    ])


def render_grub(*, kernel: str, boot_image: str, args: str, title: str) -> str:
    """Return a GRUB config that boots the task's kernel straight away."""
    return "\n".join([
        "set default=0",
        "set timeout=0",
        f"menuentry {shlex.quote(_safe(title))} {{",
        f"  linux /{_safe(kernel).lstrip('/')} {_safe(args)}",
        f"  initrd /{_safe(boot_image).lstrip('/')}",
        "}",
        "",
    ])


def boot_choice(config: Mapping, profile) -> tuple[str, str]:
    """Return the kernel and boot image names: the profile's, else the configured defaults."""
    kernel = (profile.pxe_kernel if profile else "") or config.get(
        "BOOT_DEFAULT_KERNEL", DEFAULT_KERNEL)
    image = (profile.pxe_boot_image if profile else "") or config.get(
        "BOOT_DEFAULT_IMAGE", DEFAULT_BOOT_IMAGE)
    return kernel, image


def task_title(task) -> str:
    """Return the one-line label of a task shown by the boot loaders."""
    computer = task.computer.name if task.computer else "unknown computer"
    image = task.image.name if task.image else "no image"
    return f"{task.kind} {image} on {computer} (task {task.id})"


def write_for_task(config: Mapping, task, ticket: str) -> list[Path]:
    """Write the per-MAC pxelinux and GRUB files that boot this task; return their paths.

    `ticket` is a one-time boot ticket: a TFTP file is readable by anyone on the LAN.
    """
    mac = task.computer.mac
    kernel, image = boot_choice(config, task.profile)
    args = task_kernel_args(task.profile.kernel_args if task.profile else "",
                            config["SERVER_URL"], ticket, action=task_action(task))
    title = task_title(task)
    written = []
    for path, text in (
        (pxelinux_path(config["TFTP_PATH"], mac),
         render_pxelinux(kernel=kernel, boot_image=image, args=args, title=title)),
        (grub_path(config["TFTP_PATH"], mac),
         render_grub(kernel=kernel, boot_image=image, args=args, title=title)),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a booting machine never reads half a file.
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)  # the TFTP daemon runs as its own user
        tmp.replace(path)
        written.append(path)
    return written


def remove_for_mac(config: Mapping, mac: str) -> None:
    """Remove this MAC's pxelinux and GRUB files, so it boots the default menu again."""
    for path in (pxelinux_path(config["TFTP_PATH"], mac), grub_path(config["TFTP_PATH"], mac)):
        path.unlink(missing_ok=True)


def per_mac_files(config: Mapping) -> dict[str, list[Path]]:
    """Return the per-MAC boot files in the TFTP folder, keyed by MAC address."""
    found: dict[str, list[Path]] = {}
    tftp = Path(config["TFTP_PATH"])
    for pattern in ("pxelinux.cfg/01-*", "grub/grub.cfg-01-*"):
        for path in tftp.glob(pattern):
            stem = path.name.rsplit("01-", 1)[1]
            try:
                mac = normalize_mac(stem)
            except ValueError:
                continue  # not ours (or a .tmp in flight)
            found.setdefault(mac, []).append(path)
    return found
