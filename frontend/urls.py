"""Pages. Everything about one hospital lives under /h/<slug>/ (DESIGN §2)."""

from django.urls import path

from frontend.views import admin, audit, auth, federation, home, hospitals, invite, patients, scans

app_name = "frontend"

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/login/", auth.login, name="login"),
    path("accounts/logout/", auth.logout, name="logout"),
    path("accounts/password/", auth.password_change, name="password-change"),
    path("accounts/password-reset/", auth.password_reset, name="password-reset"),
    path("accounts/password-reset/sent/", auth.password_reset_done, name="password-reset-done"),
    # The emailed link is .../open/#<uidb64>/<token>: what follows "#" reaches no server (auth.py).
    path("accounts/password-reset/open/", auth.password_reset_link, name="password-reset-link"),
    path("accounts/password-reset/<uidb64>/<token>/", auth.password_reset_confirm, name="password-reset-confirm"),
    path("accounts/password-reset/done/", auth.password_reset_complete, name="password-reset-complete"),
    # The emailed link is /invite/#<token> (invite.py); /invite/<token>/ still opens links mailed before.
    path("invite/", invite.open_link, name="invite-link"),
    path("invite/<str:token>/", invite.accept, name="invite"),
    path("operator/hospitals/", hospitals.hospitals, name="operator-hospitals"),
    path("operator/hospitals/<slug:slug>/invite-admin/", hospitals.invite_admin, name="operator-invite-admin"),
    path("operator/federation/", federation.operator, name="operator"),
    path("operator/federation/runs/<str:run_id>/", federation.operator_run, name="operator-run"),
    path("operator/federation/runs/<str:run_id>/stop/", federation.operator_run_stop, name="operator-run-stop"),
    path("operator/federation/runs/<str:run_id>/promote/", federation.operator_run_promote,
         name="operator-run-promote"),
    path("operator/models/<str:version_id>/promote/", federation.model_promote, name="model-promote"),
    path("operator/models/<str:task>/rollback/", federation.model_rollback, name="model-rollback"),
    path("h/<slug:slug>/", home.hospital_home, name="hospital-home"),
    path("h/<slug:slug>/scans/", scans.history, name="scans"),
    path("h/<slug:slug>/scans/<str:scan_id>/", scans.scan, name="scan"),
    path("h/<slug:slug>/scans/<str:scan_id>/remove/", scans.scan_remove, name="scan-remove"),
    path("h/<slug:slug>/upload/", scans.upload, name="upload"),
    path("h/<slug:slug>/patients/<str:patient_id>/", patients.patient, name="patient"),
    path("h/<slug:slug>/worklist/", scans.worklist, name="worklist"),
    path("h/<slug:slug>/worklist/names/", scans.worklist_names, name="worklist-names"),
    path("h/<slug:slug>/members/", admin.members, name="members"),
    path("h/<slug:slug>/members/<str:member_id>/role/", admin.member_role, name="member-role"),
    path("h/<slug:slug>/members/<str:member_id>/remove/", admin.member_remove, name="member-remove"),
    path("h/<slug:slug>/invitations/<str:invitation_id>/revoke/", admin.invitation_revoke, name="invitation-revoke"),
    path("h/<slug:slug>/settings/", admin.hospital_settings, name="settings"),
    path("h/<slug:slug>/audit/", audit.audit, name="audit"),
    path("h/<slug:slug>/audit/export.csv", audit.audit_export, name="audit-export"),
    path("h/<slug:slug>/federation/", federation.dashboard, name="federation"),
    path("h/<slug:slug>/federation/start/", federation.run_start, name="federation-start"),
    path("h/<slug:slug>/federation/runs/<str:run_id>/", federation.run_detail, name="federation-run"),
]

