"""The portal's own records: the hosts that run the task cluster, and password reset requests."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ClusterHost(models.Model):
    """One ``manage.py runworkers`` process (a host's cluster and stager), seen by its beats.

    ``beat_at`` is written by the main process (the stager loop) every few seconds;
    ``workers_beat_at`` by a heartbeat task that one of the host's workers ran, so it proves
    that tasks are taken from the queue and run. A host stopped by SIGTERM says so in
    ``stopped_at``; one that died (SIGKILL, power) just stops beating.
    """

    name = models.CharField(_("name"), max_length=200, unique=True)  # hostname:pid
    started_at = models.DateTimeField(_("started at"))
    beat_at = models.DateTimeField(_("last beat"))
    workers_beat_at = models.DateTimeField(_("workers' last beat"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)

    class Meta:
        verbose_name = _("task cluster host")
        verbose_name_plural = _("task cluster hosts")
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.name


class ClusterWork(models.Model):
    """A task a host's worker is running now, for the kinds of work that hold a claim (an order
    transfer): written when the task starts, removed when it ends. When the host dies, the
    other hosts free those claims at once instead of waiting for them to run out."""

    host = models.CharField(_("host"), max_length=200, db_index=True)
    worker_pid = models.IntegerField(_("worker process"))
    func = models.CharField(_("task"), max_length=100)
    object_id = models.BigIntegerField(_("object id"))
    started_at = models.DateTimeField(_("started at"))

    class Meta:
        verbose_name = _("running task")
        verbose_name_plural = _("running tasks")

    def __str__(self) -> str:
        return f"{self.func}({self.object_id}) on {self.host}"


class PasswordResetRequest(models.Model):
    """One request for a password reset e-mail, as the reset form's throttle counts them
    (``portal.lockouts.ThrottledPasswordResetView``). The address is kept only as its SHA-256: the
    throttle needs to know two requests were for the same address, not which address it was."""

    email_digest = models.CharField(_("e-mail address (SHA-256)"), max_length=64)
    ip_address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("password reset request")
        verbose_name_plural = _("password reset requests")
        indexes = [
            models.Index(fields=["email_digest", "requested_at"], name="portal_reset_email_idx"),
            models.Index(fields=["ip_address", "requested_at"], name="portal_reset_client_idx"),
        ]
