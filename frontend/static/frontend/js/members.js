// The invitation form: the patient's details matter only for a patient invitation; without JavaScript
// they stay visible.
const role = document.getElementById("invite-role");
const patientFields = document.getElementById("patient-fields");
const showPatientFields = () => {
  const patient = role.value === "patient";
  patientFields.hidden = !patient;
  document.getElementById("invite-name").required = patient;
};
role.addEventListener("change", showPatientFields);
showPatientFields();
