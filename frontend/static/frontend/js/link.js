// An emailed link (an invitation, a password reset) carries its secret after "#": browsers never send
// that part to a server, so it reaches no access log. This page holds no secret; it takes it from the
// address, wipes it from the address bar and this history entry (Back, a copied address, a screenshot),
// and posts it in the form's body, with the form's CSRF token. Without JavaScript the form is for
// pasting the whole link.
const form = document.getElementById("link-form");
const secret = location.hash.slice(1);
if (secret) {
  history.replaceState(null, "", location.pathname + location.search);
  form.elements.link.value = secret;
  form.hidden = true;
  document.getElementById("link-opening").hidden = false;
  form.submit();
} else {
  document.getElementById("link-incomplete").hidden = false;
}
