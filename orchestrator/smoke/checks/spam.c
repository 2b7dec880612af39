#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *add(PyObject *s, PyObject *a) {
  long x, y; if (!PyArg_ParseTuple(a, "ll", &x, &y)) return NULL;
  return PyLong_FromLong(x + y);
}
static PyMethodDef M[] = {{"add", add, METH_VARARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef D = {PyModuleDef_HEAD_INIT, "spam", NULL, -1, M};
PyMODINIT_FUNC PyInit_spam(void) { return PyModule_Create(&D); }
