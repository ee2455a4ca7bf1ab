// A form with data-confirm does something wide or hard to undo (remove a member, promote a model):
// the browser asks first. Without JavaScript the form still works, as every page does.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!confirm(form.dataset.confirm)) event.preventDefault();
  });
}
