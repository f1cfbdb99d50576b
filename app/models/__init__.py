"""All models, importable from one place."""

from app.models.computers import Computer, ComputerGroup, Task
from app.models.credentials import BootTicket, TaskToken
from app.models.images import Category, History, Image, record_history
from app.models.jobs import Job
from app.models.modules import (
    FileCopyModule,
    ProfileFileCopy,
    ProfileScript,
    ProfileSysprep,
    ScriptModule,
    SysprepModule,
)
from app.models.multicast import MulticastClient, MulticastPort, MulticastSession
from app.models.profiles import ImageProfile, default_profile_for
from app.models.servers import ComServer, ReplicationNonce, ReplicationStatus, Setting
from app.models.sessions import LoginThrottle, WebSession
from app.models.users import ApiToken, User

__all__ = [
    "MulticastClient", "MulticastPort", "MulticastSession",
    "ApiToken", "BootTicket", "Category", "ComServer", "Computer", "ComputerGroup",
    "FileCopyModule", "History", "Image", "ImageProfile", "Job", "ProfileFileCopy",
    "ProfileScript", "ProfileSysprep", "ReplicationNonce", "ReplicationStatus", "ScriptModule",
    "Setting", "SysprepModule", "Task", "TaskToken",
    "User", "default_profile_for", "record_history",
    "LoginThrottle", "WebSession",
]
