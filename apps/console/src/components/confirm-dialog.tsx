/**
 * A confirmation in a native <dialog> (modal, focus trapped, Escape cancels — the browser does the
 * keyboard handling).
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ComponentChildren } from 'preact';

export interface ConfirmProps {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  onConfirm(): void;
  onCancel(): void;
}

export function ConfirmDialog({ title, children, confirmLabel, onConfirm, onCancel }: ConfirmProps) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onCancel={(e) => (e.preventDefault(), onCancel())}>
      <form method="dialog" onSubmit={(e) => (e.preventDefault(), onConfirm())}>
        <h2 id="confirm-title">{title}</h2>
        <div class="confirm-body">{children}</div>
        <div class="actions">
          <button type="button" onClick={onCancel} autofocus>
            Cancel
          </button>
          <button type="submit" class="danger">
            {confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
